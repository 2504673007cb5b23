"""Creating tasks and starting their workflows; shared by the task and message routes.

The task row is written first (so reads work at once, without a worker), then the workflow is
started with ``workflow id = task_id``. A start that fails removes the row again, so a caller
never sees a task that will not run. With an idempotency key the task id is reserved before
either step, and the start uses the existing workflow if one is already there, so a retry after
a crash finishes the job instead of making a second task.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from codetether.core import idempotency
from codetether.core.config import Settings
from codetether.core.db import Database
from codetether.core.ids import new_id, ulid, utcnow
from codetether.core.models import IdempotencyRecord, Task
from codetether.agent.contracts import ChatMessage, ToolCall
from codetether.files.contracts import Attachment
from codetether.tasks.contracts import SA_MODEL, SA_OWNER, SA_STATUS, TASK_WORKFLOW, TaskInput, TaskResult

log = logging.getLogger(__name__)


@dataclass
class NewTask:
    owner_id: str
    title: str
    description: str
    agent_type: str = "general"
    model: str = "demo"
    priority: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    codebase_id: str | None = None
    webhook_url: str | None = None
    callback_url: str | None = None
    webhook_events: list[str] | None = None
    webhook_secret: str | None = None
    notify_email: str | None = None
    input_timeout_seconds: float | None = None
    concurrency_limit: int | None = None
    request_id: str | None = None
    max_turns: int | None = None
    tags: list[str] = field(default_factory=list)
    output_schema: dict[str, Any] | None = None
    max_cost_usd: float | None = None
    # As given ({"file_id"} or {"url", "name"?}); the service turns them into Attachment items.
    attachments: list[Any] = field(default_factory=list)
    # "plan": the plan is approved by a person before the agent changes anything (CONTRACT §12).
    require_approval: str | None = None


class StartFailed(Exception):
    pass


def search_attributes(owner_id: str, status: str, model: str) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [SearchAttributePair(SA_OWNER, owner_id), SearchAttributePair(SA_STATUS, status), SearchAttributePair(SA_MODEL, model)]
    )


async def create_task(
    db: Database, client: Client, settings: Settings, new: NewTask, *, task_id: str | None = None
) -> Task:
    reserved = task_id is not None
    task_id = task_id or new_id("task")
    existing: Task | None = None
    if reserved:
        # Only a reserved id (idempotent retry) can already exist; a fresh id cannot.
        async with db.session() as s:
            existing = await s.get(Task, task_id)
    # A reserved id's first run id is derived from it, as in create_task_keyed (see as_created).
    task = existing or _new_row(task_id, new, run_id=f"run_{task_id.removeprefix('task_')}" if reserved else None)
    inp = task_input(task, concurrency_limit=new.concurrency_limit, request_id=new.request_id)
    if existing is not None:
        try:
            await start_task_workflow(client, settings, inp, reuse_existing=True)
        except Exception as err:
            raise StartFailed(str(err)) from err
        return existing

    # Insert and start overlap: the worker's first record_event waits (retries) until the row
    # is committed, and whichever half fails undoes the other, so no half-created task remains.
    insert, start = await asyncio.gather(
        _insert(db, task), start_task_workflow(client, settings, inp, reuse_existing=reserved), return_exceptions=True
    )
    if isinstance(insert, BaseException) or isinstance(start, BaseException):
        if not isinstance(start, BaseException):
            await _terminate_quietly(client, task.id)
        if not isinstance(insert, BaseException):
            async with db.write_connection() as conn:
                await conn.execute(_DELETE_TASK, {"task_id": task.id})
        err = start if isinstance(start, BaseException) else insert
        raise StartFailed(str(err)) from err
    return task


def _new_row(task_id: str, new: NewTask, *, run_id: str | None = None) -> Task:
    now = utcnow()
    return Task(
        id=task_id,
        user_id=new.owner_id,
        run_id=run_id or new_id("run"),
        title=new.title,
        description=new.description,
        agent_type=new.agent_type,
        model=new.model,
        priority=new.priority,
        metadata_=new.metadata,
        codebase_id=new.codebase_id,
        status="queued",
        created_at=now,
        updated_at=now,
        webhook_url=new.webhook_url,
        callback_url=new.callback_url,
        webhook_events=new.webhook_events,
        webhook_secret=new.webhook_secret,
        notify_email=new.notify_email,
        request_id=new.request_id,
        input_timeout_seconds=new.input_timeout_seconds,
        max_turns=new.max_turns,
        tags=list(new.tags),
        output_schema=new.output_schema,
        max_cost_usd=new.max_cost_usd,
        attachments=[a.stored() for a in new.attachments] if new.attachments else None,
        require_approval=new.require_approval,
        conversation=[],
        retry_count=0,
        run_count=1,
        last_seq=0,
    )


_TASKS = Task.__table__
# (attribute, column) of every column: the attribute ``metadata_`` is the column ``metadata``.
_TASK_COLUMNS = [(attr.key, attr.columns[0].key) for attr in Task.__mapper__.column_attrs]
# Built once, values bound per call: an ``insert(Task).values(...)`` built per create spends more
# CPU on coercing the values and computing its cache key than the database spends on the insert.
_INSERT_TASK = _TASKS.insert()
_DELETE_TASK = _TASKS.delete().where(_TASKS.c.id == bindparam("task_id"))
_KEYS = IdempotencyRecord.__table__
_DELETE_KEY = _KEYS.delete().where(_KEYS.c.id == bindparam("record_id"))


def _row_values(task: Task) -> dict[str, Any]:
    state = task.__dict__
    return {column: state.get(key) for key, column in _TASK_COLUMNS}


async def _insert(db: Database, task: Task) -> None:
    # A Core insert over a bare connection: no ORM flush or session on this hot path.
    async with db.write_connection() as conn:
        await conn.execute(_INSERT_TASK, _row_values(task))


@dataclass
class IdempotentKey:
    """The ``Idempotency-Key`` of a create, with what identifies its request (see codetether/core/idempotency.py)."""

    scope: str
    key: str
    method: str
    path: str
    fingerprint: str
    lock_timeout: Any = idempotency.LOCK_TIMEOUT


@dataclass
class KeyedCreate:
    """What a create with an Idempotency-Key came to: the task (``replayed`` when an earlier
    request with the key made it), or, when ``task`` is None, the claim that says why not
    (a stored response to replay, another request with the key, one still in flight)."""

    task: Task | None
    replayed: bool = False
    claim: idempotency.Claim | None = None


async def _start_or_undo(db: Database, client: Client, settings: Settings, task: Task, new: NewTask, record_id) -> None:
    inp = task_input(task, concurrency_limit=new.concurrency_limit, request_id=new.request_id)
    try:
        # USE_EXISTING: a retry of this request may have started it already.
        await start_task_workflow(client, settings, inp, reuse_existing=True)
    except Exception as err:
        try:
            async with db.write_connection() as conn:
                await conn.execute(_DELETE_TASK, {"task_id": task.id})
                await conn.execute(_DELETE_KEY, {"record_id": record_id})
        except Exception:  # noqa: BLE001 - a retry then finds the row and starts it
            log.exception("removing %s after a failed start", task.id)
        raise StartFailed(str(err)) from err


async def _workflow_exists(client: Client, task_id: str) -> bool:
    try:
        await client.get_workflow_handle(task_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


def as_created(task: Task) -> Task:
    """The task as its create answered it: the row's creation fields, the rest as a new row has
    them. A replay of a keyed create answers with this, field for field the first response.

    A keyed create's first run id is derived from its task id (``run_<seed>``), so it is known
    here even after follow-ups have moved the row's run id on.
    """
    seed = task.id.removeprefix("task_")
    new = NewTask(
        owner_id=task.user_id,
        title=task.title,
        description=task.description,
        agent_type=task.agent_type,
        model=task.model,
        priority=task.priority,
        metadata=task.metadata_ or {},
        codebase_id=task.codebase_id,
        webhook_url=task.webhook_url,
        callback_url=task.callback_url,
        webhook_events=task.webhook_events,
        notify_email=task.notify_email,
        input_timeout_seconds=task.input_timeout_seconds,
        request_id=task.request_id,
        max_turns=task.max_turns,
    )
    row = _new_row(task.id, new, run_id=f"run_{seed}")
    row.created_at = row.updated_at = task.created_at
    return row


async def create_task_keyed(db: Database, client: Client, settings: Settings, new: NewTask, key: IdempotentKey) -> KeyedCreate:
    """Creates a task under an Idempotency-Key: the key's claim and the task row in one transaction.

    The workflow is started after that commit, so whatever point a request dies at, a retry finds
    either nothing (and creates afresh) or the claim with its task row, and then makes sure the
    workflow runs (a start that uses an existing one) and answers with the task. No response is
    stored for it: a replay is rebuilt from the row (:func:`as_created`). A start that fails
    removes both rows in one transaction, so the key is as good as new and no task remains.
    """
    for _ in range(2):
        seed = ulid()
        task = _new_row(f"task_{seed}", new, run_id=f"run_{seed}")
        claim = await idempotency.claim_with_row(
            db, key.scope, key.key, key.method, key.path, key.fingerprint, seed, (_INSERT_TASK, _row_values(task)),
            lock_timeout=key.lock_timeout,
        )
        if claim.outcome is idempotency.Outcome.PROCEED and not claim.taken_over:
            await _start_or_undo(db, client, settings, task, new, claim.record_id)
            return KeyedCreate(task)
        reserved = claim.resource_seed
        if claim.outcome not in (idempotency.Outcome.CREATED, idempotency.Outcome.PROCEED) or not reserved:
            return KeyedCreate(None, claim=claim)
        task_id = idempotency.resource_id(reserved, "task")
        if claim.outcome is idempotency.Outcome.PROCEED:
            # Taken over from a crashed request that reserved the id in a claim of its own (the
            # claim-then-create path of other routes): finish its job with that id.
            return KeyedCreate(await create_task(db, client, settings, new, task_id=task_id))
        async with db.session() as s:
            existing = await s.get(Task, task_id)
        if existing is None:
            # The task was deleted since (with its user): the key is new again.
            await idempotency.forget(db, claim.record_id)
            continue
        # Made by an earlier request with this key, which may have died before its start.
        if existing.status == "queued" and not await _workflow_exists(client, existing.id):
            if claim.recent:
                # That request is still between its commit and its start (CONTRACT: 409 while
                # the first is in flight); after the lock timeout a retry finishes its job.
                return KeyedCreate(None, claim=idempotency.Claim(idempotency.Outcome.IN_FLIGHT, record_id=claim.record_id))
            inp = task_input(existing, concurrency_limit=new.concurrency_limit, request_id=existing.request_id)
            try:
                await start_task_workflow(client, settings, inp, reuse_existing=True)
            except Exception as err:
                raise StartFailed(str(err)) from err
        return KeyedCreate(as_created(existing), replayed=True)
    return KeyedCreate(None, claim=claim)


async def _terminate_quietly(client: Client, task_id: str) -> None:
    try:
        await client.get_workflow_handle(task_id).terminate(reason="task row could not be stored")
    except Exception:  # noqa: BLE001 - best effort; the workflow then finds no row and fails
        log.exception("terminating %s after a failed insert", task_id)


async def start_task_workflow(
    client: Client, settings: Settings, inp: TaskInput, *, reuse_existing: bool = False, follow_up: bool = False
) -> WorkflowHandle:
    try:
        return await client.start_workflow(
            TASK_WORKFLOW,
            inp,
            result_type=TaskResult,
            id=inp.task_id,
            task_queue=settings.temporal_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE if follow_up else WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING if reuse_existing else WorkflowIDConflictPolicy.FAIL,
            search_attributes=search_attributes(inp.owner_id, "queued", inp.model),
            memo={"request_id": inp.request_id, "run_id": inp.run_id},
            static_summary=f"{inp.title[:80]} ({inp.model})",
        )
    except WorkflowAlreadyStartedError:
        if reuse_existing:
            return client.get_workflow_handle(inp.task_id)
        raise


def task_input(
    task: Task,
    *,
    concurrency_limit: int | None,
    request_id: str | None,
    follow_up: str | None = None,
) -> TaskInput:
    """The workflow input for the row's current run (a follow-up carries the conversation)."""
    return TaskInput(
        task_id=task.id,
        run_id=task.run_id,
        owner_id=task.user_id,
        title=task.title,
        description=task.description,
        agent_type=task.agent_type,
        model=task.model,
        priority=task.priority,
        concurrency_limit=concurrency_limit,
        history=conversation_from_row(task) if follow_up is not None else [],
        follow_up=follow_up,
        input_timeout_seconds=task.input_timeout_seconds,
        request_id=request_id,
        codebase_id=task.codebase_id,
        max_turns=task.max_turns,
        output_schema=task.output_schema,
        attachments=[Attachment.from_stored(a) for a in task.attachments] if task.attachments else None,
        require_approval=task.require_approval,
    )


def conversation_from_row(task: Task) -> list[ChatMessage]:
    out: list[ChatMessage] = []
    for m in task.conversation or []:
        out.append(
            ChatMessage(
                role=m.get("role", "user"),
                content=m.get("content", "") or "",
                tool_calls=[ToolCall(**c) for c in m.get("tool_calls", []) or []],
                tool_call_id=m.get("tool_call_id"),
            )
        )
    return out
