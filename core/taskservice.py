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

from sqlalchemy import delete, insert
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from core.config import Settings
from core.db import Database
from core.ids import new_id, utcnow
from core.models import Task
from workflows.task import TaskWorkflow
from workflows.types import SA_MODEL, SA_OWNER, SA_STATUS, ChatMessage, TaskInput, ToolCall

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
    task = existing or _new_row(task_id, new)
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
            async with db.write_session() as s:
                await s.execute(delete(Task).where(Task.id == task.id))
                await s.commit()
        err = start if isinstance(start, BaseException) else insert
        raise StartFailed(str(err)) from err
    return task


def _new_row(task_id: str, new: NewTask) -> Task:
    now = utcnow()
    return Task(
        id=task_id,
        user_id=new.owner_id,
        run_id=new_id("run"),
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
        conversation=[],
        retry_count=0,
        run_count=1,
        last_seq=0,
    )


async def _insert(db: Database, task: Task) -> None:
    # A Core insert of the row's columns: cheaper than an ORM flush on this hot path.
    values = {c.key: getattr(task, c.key) for c in Task.__mapper__.column_attrs}
    async with db.write_session() as s:
        await s.execute(insert(Task).values(**values))
        await s.commit()


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
            TaskWorkflow.run,
            inp,
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
