"""Finds tasks whose workflow never started and starts it.

A task row and its workflow are written by two systems. The API undoes one half when the other
fails, but if the API process itself dies in between (after the row is written, before the
workflow starts), a row is left ``queued`` with nothing to run it: a create without an
Idempotency-Key whose caller got no answer, or a follow-up whose message was accepted. Workers
call :func:`reconcile_orphans` every minute; it looks at rows that have been ``queued`` for a
while and asks Temporal whether their run exists. If not, it starts it from the row (the
follow-up message is kept in ``tasks.pending_message``). Starts are idempotent on the workflow id
and the run id is checked in the workflow memo, so several workers reconciling at once cannot
start a run twice.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from codetether.accounts.service import TIER_CONCURRENCY
from codetether.core.config import Settings
from codetether.core.db import Database
from codetether.core.ids import utcnow
from codetether.core.models import Task, User
from codetether.tasks.launch import start_task_workflow, task_input

log = logging.getLogger(__name__)

# Far longer than any API request takes between writing a row and starting its workflow.
ORPHAN_AGE = timedelta(minutes=2)
RECONCILE_EVERY = 60.0
BATCH = 100


async def _run_exists(client: Client, task: Task) -> bool:
    """True when Temporal has (or had) the execution of the row's current run."""
    try:
        desc = await client.get_workflow_handle(task.id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    if desc.status == WorkflowExecutionStatus.RUNNING:
        return True
    run_id = await desc.memo_value("run_id", None)
    return run_id == task.run_id


async def reconcile_orphans(
    db: Database,
    client: Client,
    settings: Settings,
    *,
    older_than: timedelta = ORPHAN_AGE,
    user_id: str | None = None,
) -> list[str]:
    """Starts the missing runs of orphaned queued tasks (of one user, if given); returns their ids."""
    cutoff = utcnow() - older_than
    query = (
        select(Task, User.tier)
        .join(User, User.id == Task.user_id)
        .where(Task.status == "queued", Task.started_at.is_(None), Task.updated_at < cutoff)
        .order_by(Task.updated_at)
        .limit(BATCH)
    )
    if user_id is not None:
        query = query.where(Task.user_id == user_id)
    async with db.session() as s:
        rows = (await s.execute(query)).all()
    started: list[str] = []
    for task, tier in rows:
        try:
            if await _run_exists(client, task):
                continue
            follow_up = task.run_count > 1
            inp = task_input(
                task,
                concurrency_limit=TIER_CONCURRENCY.get(tier, 5),
                request_id=task.request_id,
                follow_up=(task.pending_message or "") if follow_up else None,
            )
            await start_task_workflow(client, settings, inp, reuse_existing=not follow_up, follow_up=follow_up)
        except WorkflowAlreadyStartedError:
            continue  # another worker got there first
        except Exception:  # noqa: BLE001 - one bad row must not stop the others
            log.exception("reconciling task %s failed", task.id)
            continue
        log.warning("task %s had no workflow for run %s; started it", task.id, task.run_id)
        started.append(task.id)
    return started
