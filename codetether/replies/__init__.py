"""Replies without an API key: signed reply links and tokens, inbound email and the SMTP listener."""
