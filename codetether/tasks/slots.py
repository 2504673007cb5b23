"""A task's running slot under its owner's concurrency limit, as :class:`TaskWorkflow` holds it.

The owner's ``ConcurrencyWorkflow`` (reached by its id and signal names) grants slots (the
``grant_slot`` signal); the task gives its slot back when it ends or parks in needs_input, either
with the record that ends or parks it (lean executions) or by a ``release_slot`` signal.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from codetether.concurrency.contracts import RELEASE_SLOT_SIGNAL, SlotRelease, SlotRequestInput, concurrency_workflow_id
    from codetether.core.ids import iso
    from codetether.tasks.activities import TaskActivities
    from codetether.tasks.contracts import TaskInput
    from codetether.tasks.policies import LOCAL_RECORD_RETRY, RECORD_RETRY, RECORD_TIMEOUT
    from codetether.tasks.run_state import TaskRunState


class RunningSlot:
    def __init__(self, inp: TaskInput, state: TaskRunState) -> None:
        self._input = inp
        self._state = state
        self.granted = False
        self.held = False
        # Set when the record that ended or parked the run also freed the slot.
        self.release_sent = False

    def grant(self) -> None:
        self.granted = True

    async def acquire(self) -> None:
        """Waits (status queued) until the owner's concurrency workflow grants a running slot."""
        inp = self._input
        if inp.concurrency_limit is None or self.held:
            return
        # Not reset here: a workflow task that timed out and runs again may see the grant (a
        # signal in its history) before it reaches this point. It is reset when the slot goes.
        request = SlotRequestInput(
            owner_id=inp.owner_id,
            limit=inp.concurrency_limit,
            task_id=inp.task_id,
            priority=inp.priority,
            requested_at=iso(workflow.now()) or "",
        )
        if self._state.lean:
            await workflow.execute_local_activity_method(
                TaskActivities.request_slot, request, start_to_close_timeout=RECORD_TIMEOUT, retry_policy=LOCAL_RECORD_RETRY
            )
        else:
            await workflow.execute_activity_method(
                TaskActivities.request_slot, request, start_to_close_timeout=RECORD_TIMEOUT, retry_policy=RECORD_RETRY
            )
        await workflow.wait_condition(lambda: self.granted)
        self.held = True

    def freed_by_record(self) -> str | None:
        """The owner whose slot the ending or parking record frees (None without a limit)."""
        if self._input.concurrency_limit is None:
            return None
        self.held = False
        self.granted = False
        self.release_sent = True
        return self._input.owner_id

    async def release(self) -> None:
        if self._input.concurrency_limit is None:
            return
        if self.release_sent:
            # The record that ended or parked the run freed the slot already.
            self.release_sent = False
            return
        # Also withdraws a request still waiting in the queue (cancel while queued).
        self.held = False
        self.granted = False
        handle = workflow.get_external_workflow_handle(concurrency_workflow_id(self._input.owner_id))
        try:
            await handle.signal(RELEASE_SLOT_SIGNAL, SlotRelease(task_id=self._input.task_id))
        except FailureError:
            # The owner's concurrency workflow is gone (or never started), so nothing is held.
            pass
