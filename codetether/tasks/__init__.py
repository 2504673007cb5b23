"""Tasks: the task workflow, its activities and contracts, the task services every face calls, the
event log, artifacts, conversations and reconciliation."""
