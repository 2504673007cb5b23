"""How :class:`codetether.tasks.workflow.TaskWorkflow` writes its transitions to the database.

Every status change is a :class:`RecordEventInput` (an event id, the columns it changes, when it
happened), so the API answers reads without a worker. Executions started since ``lean-task-v1``
(LEAN_TASK_PATCH) write a list of them with one local activity, which may also free the run's slot;
older executions write each with its own ``record_event`` activity.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from codetether.core.ids import iso, ulid
    from codetether.tasks.activities import TaskActivities
    from codetether.tasks.contracts import (
        SA_STATUS,
        RecordEventInput,
        RecordEventsInput,
        TaskChanges,
        TaskInput,
    )
    from codetether.tasks.policies import LOCAL_RECORD_RETRY, RECORD_RETRY, RECORD_TIMEOUT
    from codetether.tasks.run_state import TaskRunState

if TYPE_CHECKING:
    from codetether.tasks.slots import RunningSlot

# Answers are recorded as a task.message event (who answered, by which channel) from here on.
REPLY_EVENT_PATCH = "reply-origin-event"


class TaskRecorder:
    def __init__(self, inp: TaskInput, state: TaskRunState, slot: RunningSlot) -> None:
        self._input = inp
        self._state = state
        self._slot = slot

    async def record(
        self, event_type: str | None, changes: TaskChanges, details: dict | None = None, *, release_slot: bool = False
    ) -> None:
        await self.write([self.event(event_type, changes, details)], release_slot=release_slot)

    def event(self, event_type: str | None, changes: TaskChanges, details: dict | None = None) -> RecordEventInput:
        """One transition, stamped now; a status change is also set as the task's search attribute."""
        if changes.status:
            workflow.upsert_search_attributes([SA_STATUS.value_set(changes.status)])
        now = workflow.now()
        event_id = self.new_id("evt_")
        return RecordEventInput(
            task_id=self._input.task_id,
            run_id=self._input.run_id,
            event_id=event_id,
            event_type=event_type,
            changes=changes,
            occurred_at=iso(now) or "",
            details=details,
        )

    async def write(self, events: list[RecordEventInput], *, release_slot: bool = False) -> None:
        """Writes the transitions to the database. ``release_slot``: the run ends or parks, so
        its running slot is freed right after (by the same local activity on the patched path;
        older executions signal afterwards, in ``RunningSlot.release``)."""
        if not self._state.lean:
            for ev in events:
                await workflow.execute_activity_method(
                    TaskActivities.record_event, ev, start_to_close_timeout=RECORD_TIMEOUT, retry_policy=RECORD_RETRY
                )
            return
        owner = self._slot.freed_by_record() if release_slot else None
        await workflow.execute_local_activity_method(
            TaskActivities.record_events,
            RecordEventsInput(task_id=self._input.task_id, events=events, release_slot_owner=owner),
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=LOCAL_RECORD_RETRY,
        )

    def new_id(self, prefix: str) -> str:
        """An event or action id, the same on every replay. A lean execution writes before its
        workflow task completes (local activities), so a timed-out workflow task that runs again
        must make the same ids; its time part is therefore the run's start, not workflow.now()
        (the start of whichever attempt of the workflow task is running)."""
        when = workflow.info().start_time if self._state.lean else workflow.now()
        return prefix + ulid(int(when.timestamp() * 1000), workflow.random().randbytes(10))

    def replies_recorded(self) -> bool:
        """True when answers and follow-ups are recorded as task.message events."""
        return self._state.lean or workflow.patched(REPLY_EVENT_PATCH)
