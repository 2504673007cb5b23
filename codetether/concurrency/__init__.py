"""The per-user concurrency workflow (running-task limits) and its contracts."""
