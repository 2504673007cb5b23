"""A cancel request the workflow must not lose.

Temporal hands a workflow's cancellation to the step it is awaiting. An activity awaited with
``WAIT_CANCELLATION_COMPLETED`` that finishes successfully anyway (a short model turn that never
heartbeated) returns its result, and the SDK then forgets the request: the task would go on, or
park on a question, as if nobody had cancelled it. The task workflow checks the request between
steps with :func:`raise_if_cancel_requested`.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow

# Executions that saw a cancel request consumed this way replay without the check.
CANCEL_BETWEEN_STEPS_PATCH = "cancel-between-steps-v1"


def raise_if_cancel_requested() -> None:
    """Raises CancelledError when the server asked to cancel this execution."""
    if workflow.cancellation_reason() is not None and workflow.patched(CANCEL_BETWEEN_STEPS_PATCH):
        raise asyncio.CancelledError("the task was cancelled")
