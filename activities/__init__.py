"""Temporal activities: the agent turn, event recording, concurrency slots, webhook delivery."""
