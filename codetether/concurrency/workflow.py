"""ConcurrencyWorkflow: one per user with a running-task limit (workflow id ``concurrency-<user>``).

Task workflows ask it for a slot (signal-with-start from the ``request_slot`` activity) and wait,
status ``queued``, holding no worker slot. It grants slots while fewer than ``limit`` are held,
highest ``priority`` first and oldest first within a priority, by signalling ``grant_slot`` to
the requester's workflow id (by name: this module knows no task workflow). A task releases its
slot when it ends or parks in ``needs_input``.
The workflow ends when nobody holds or waits, and starts afresh (continue-as-new) before its
history grows large.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from codetether.concurrency.contracts import (
        CONCURRENCY_WORKFLOW,
        GRANT_SLOT_SIGNAL,
        RELEASE_SLOT_SIGNAL,
        REQUEST_SLOT_SIGNAL,
        ConcurrencyInput,
        ConcurrencyResult,
        ConcurrencySnapshot,
        SlotGrant,
        SlotRelease,
        SlotRequest,
        concurrency_workflow_id,  # noqa: F401 - re-exported for tests and tools
    )

# Keep the workflow open briefly when idle so bursts do not start and end it for every task.
IDLE_LINGER = timedelta(seconds=30)
EVENTS_BEFORE_CONTINUE_AS_NEW = 2000


@workflow.defn(name=CONCURRENCY_WORKFLOW)
class ConcurrencyWorkflow:
    @workflow.init
    def __init__(self, inp: ConcurrencyInput) -> None:
        self._owner_id = inp.owner_id
        self._limit = inp.limit
        self._waiting: list[SlotRequest] = list(inp.waiting)
        self._holders: list[str] = list(inp.holders)
        self._events = 0
        self._granted = 0

    @workflow.signal(name=REQUEST_SLOT_SIGNAL)
    def request_slot(self, req: SlotRequest) -> None:
        self._events += 1
        if req.limit is not None:
            # The newest request carries the owner's current tier: an upgrade opens slots at once.
            self._limit = req.limit
        if req.task_id in self._holders or any(w.task_id == req.task_id for w in self._waiting):
            return
        self._waiting.append(req)

    @workflow.signal(name=RELEASE_SLOT_SIGNAL)
    def release_slot(self, rel: SlotRelease) -> None:
        self._events += 1
        self._holders = [h for h in self._holders if h != rel.task_id]
        self._waiting = [w for w in self._waiting if w.task_id != rel.task_id]

    @workflow.signal
    def set_limit(self, limit: int) -> None:
        self._limit = limit

    @workflow.query
    def get_slots(self) -> ConcurrencySnapshot:
        return ConcurrencySnapshot(
            owner_id=self._owner_id,
            limit=self._limit,
            holders=list(self._holders),
            waiting=[w.task_id for w in self._ordered_waiting()],
        )

    def _ordered_waiting(self) -> list[SlotRequest]:
        return sorted(self._waiting, key=lambda w: (-w.priority, w.requested_at, w.task_id))

    def _can_grant(self) -> bool:
        return bool(self._waiting) and len(self._holders) < self._limit

    @workflow.run
    async def run(self, inp: ConcurrencyInput) -> ConcurrencyResult:
        while True:
            while self._can_grant():
                nxt = self._ordered_waiting()[0]
                self._waiting.remove(nxt)
                self._holders.append(nxt.task_id)
                handle = workflow.get_external_workflow_handle(nxt.task_id)
                try:
                    await handle.signal(GRANT_SLOT_SIGNAL, SlotGrant(slot_owner=self._owner_id))
                    self._granted += 1
                except Exception:  # noqa: BLE001 - the task closed meanwhile; its slot is free again
                    self._holders = [h for h in self._holders if h != nxt.task_id]

            if self._events >= EVENTS_BEFORE_CONTINUE_AS_NEW or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    ConcurrencyInput(
                        owner_id=self._owner_id,
                        limit=self._limit,
                        waiting=self._waiting,
                        holders=self._holders,
                    )
                )

            idle = self._is_idle()
            try:
                # Wake to grant, or when the workflow becomes idle / busy again.
                await workflow.wait_condition(
                    lambda: self._can_grant()
                    or self._is_idle() != idle
                    or self._events >= EVENTS_BEFORE_CONTINUE_AS_NEW,
                    timeout=IDLE_LINGER if idle else None,
                )
            except TimeoutError:  # asyncio.TimeoutError is TimeoutError on 3.11+
                if self._is_idle():
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    return ConcurrencyResult(owner_id=self._owner_id, granted=self._granted)

    def _is_idle(self) -> bool:
        return not self._holders and not self._waiting
