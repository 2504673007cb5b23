"""Timeouts and retry policies of the task workflow's records (transitions and slot requests),
shared by :mod:`codetether.tasks.recording` and :mod:`codetether.tasks.slots`."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

RECORD_TIMEOUT = timedelta(seconds=30)
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
# Local records retry quickly at first: the first one may run before the API's row insert
# (which overlaps the workflow start) has committed.
LOCAL_RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=100), backoff_coefficient=2.0, maximum_interval=timedelta(seconds=10)
)
