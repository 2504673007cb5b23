"""Cancelling many tasks at once: ``POST /v1/automation/tasks/cancel`` (CONTRACT §11).

The caller names the tasks by id or by the list's filter; each chosen task gets the same durable
Temporal cancellation as ``DELETE /tasks/{id}`` (``service.cancel_task``). The answer says which
were cancelled and which were skipped (unknown to the caller, already finished, or finished
before the cancellation reached them).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy import select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from codetether.core.db import Database
from codetether.core.errors import ServiceError
from codetether.core.models import Task
from codetether.tasks.contracts import TERMINAL_STATUSES
from codetether.tasks.service import CANCEL_WAIT_SECONDS, WAIT_POLL_INTERVAL, TaskFilter, filtered

MAX_TASKS = 1000
# Cancellation requests in flight at once, so a thousand do not queue on one Temporal connection.
PARALLEL_CANCELS = 16


@dataclass
class BulkCancelOutcome:
    cancelled: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _too_many(count: int) -> ServiceError:
    return ServiceError(422, "too_many_tasks", f"{count} tasks match; at most {MAX_TASKS} can be cancelled at once",
                        errors=[{"field": "filter", "message": f"narrow it to at most {MAX_TASKS} tasks",
                                 "type": "too_many_tasks"}])


async def _chosen(db: Database, user_id: str, task_ids: list[str] | None, filt: TaskFilter | None) -> tuple[list[Task], list[str]]:
    """The caller's tasks to cancel, and the asked-for ids that are not the caller's."""
    if task_ids is not None:
        wanted = list(dict.fromkeys(task_ids))
        if len(wanted) > MAX_TASKS:
            raise _too_many(len(wanted))
        async with db.session() as s:
            rows = list((await s.execute(select(Task).where(Task.user_id == user_id, Task.id.in_(wanted)))).scalars())
        found = {t.id for t in rows}
        return sorted(rows, key=lambda t: wanted.index(t.id)), [i for i in wanted if i not in found]
    assert filt is not None
    q = filtered(db, select(Task), user_id, filt).where(Task.status.not_in(TERMINAL_STATUSES))
    q = q.order_by(Task.created_at, Task.id).limit(MAX_TASKS + 1)
    async with db.session() as s:
        rows = list((await s.execute(q)).scalars())
    if len(rows) > MAX_TASKS:
        raise _too_many(len(rows))
    return rows, []


async def _request_cancel(client: Client, task_id: str, gate: asyncio.Semaphore) -> bool:
    async with gate:
        try:
            await client.get_workflow_handle(task_id).cancel()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise ServiceError(503, "temporal_unavailable", f"cancel failed: {err.message}") from None
            return False
    return True


async def _settled(db: Database, user_id: str, task_ids: list[str], timeout: float) -> dict[str, str]:
    """Each task's status once all are terminal, or when ``timeout`` passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        async with db.session() as s:
            rows = (await s.execute(select(Task.id, Task.status).where(Task.user_id == user_id, Task.id.in_(task_ids)))).all()
        statuses = dict(rows)
        if all(v in TERMINAL_STATUSES for v in statuses.values()) or loop.time() >= deadline:
            return statuses
        await asyncio.sleep(WAIT_POLL_INTERVAL * 2)


async def cancel_tasks(
    db: Database, client: Client, user_id: str, *, task_ids: list[str] | None = None, filt: TaskFilter | None = None
) -> BulkCancelOutcome:
    """Requests the cancellation of every chosen cancellable task, then waits (as DELETE does)
    for them to end, so a task that completed first is reported as skipped, not cancelled."""
    if (task_ids is None) == (filt is None):
        raise ServiceError(422, "validation_error", "give either task_ids or filter",
                           errors=[{"field": "task_ids", "message": "give either task_ids or filter", "type": "missing"}])
    rows, unknown = await _chosen(db, user_id, task_ids, filt)
    out = BulkCancelOutcome(skipped=unknown)
    already = [t.id for t in rows if t.status == "cancelled"]
    live = [t.id for t in rows if t.status not in TERMINAL_STATUSES]
    finished = {t.id for t in rows if t.status in TERMINAL_STATUSES and t.status != "cancelled"}
    gate = asyncio.Semaphore(PARALLEL_CANCELS)
    await asyncio.gather(*(_request_cancel(client, tid, gate) for tid in live))
    statuses = await _settled(db, user_id, live, CANCEL_WAIT_SECONDS) if live else {}
    for task in rows:
        if task.id in already or (task.id in statuses and statuses[task.id] not in ("completed", "failed")):
            # Cancelled, or still ending: Temporal holds the request durably.
            out.cancelled.append(task.id)
        elif task.id in finished or task.id in statuses:
            out.skipped.append(task.id)
    return out
