"""Notification email: the email workflow, its activities and contracts."""
