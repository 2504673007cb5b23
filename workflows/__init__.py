"""Temporal workflows of CodeTether: the task workflow and the per-user concurrency workflow."""
