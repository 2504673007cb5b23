"""Webhooks: subscriptions, routing of events to destinations, signatures, the delivery workflow
and its activities."""
