"""Task routes: ``/v1/automation/tasks`` create, get (with ``?wait``), list, cancel.

Reads come from the database (the workflows keep it current), so they answer without a worker.
Writes go to Temporal: start for create, cancel for DELETE.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import and_, or_, select
from temporalio.service import RPCError, RPCStatusCode

from api.deps import (
    Catalog,
    DbSession,
    SettingsDep,
    State,
    TasksRead,
    TasksWrite,
    TemporalClient,
)
from api.errors import Problem, problem_responses
from api.rest.schemas.tasks import TaskCreate, TaskList, TaskPublic
from api.streamcap import stream_slots
from core.catalog import ModelCatalog, ModelSpec
from core.ids import as_utc, parse_iso
from core.models import Codebase, Task
from core.netguard import UnsafeURL, validate_webhook_url
from core.taskservice import NewTask, StartFailed, create_task
from core.taskview import task_to_dict
from workflows.types import TERMINAL_STATUSES, WAITING_STATUSES

router = APIRouter(prefix="/v1/automation", tags=["tasks"])

WAIT_POLL_INTERVAL = 0.1
CANCEL_WAIT_SECONDS = 10.0
MAX_WAIT = 60


def to_public(task: Task) -> TaskPublic:
    return TaskPublic.model_validate(task_to_dict(task))


async def load_task(state, task_id: str, user_id: str) -> Task:
    """The caller's task, or 404 whether it does not exist or belongs to someone else."""
    async with state.db.session() as s:
        task = await s.get(Task, task_id)
    if task is None or task.user_id != user_id:
        raise Problem(404, "task_not_found", f"no task {task_id!r}")
    return task


async def wait_for_status(state, task_id: str, user_id: str, statuses, timeout: float) -> Task:
    """Polls the task row until its status is in ``statuses`` or ``timeout`` passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    task = await load_task(state, task_id, user_id)
    while task.status not in statuses and loop.time() < deadline:
        await asyncio.sleep(min(WAIT_POLL_INTERVAL, max(0.0, deadline - loop.time())))
        task = await load_task(state, task_id, user_id)
    return task


def resolve_model(catalog: ModelCatalog, name: str | None) -> ModelSpec:
    """The catalog entry for ``name``; 422 for an unknown model or one without credentials."""
    spec = catalog.resolve(name)
    if spec is None:
        raise Problem(
            422,
            "unknown_model",
            f"unknown model {name!r}; see GET /v1/automation/models",
            errors=[{"field": "model", "message": "unknown model", "type": "unknown_model"}],
        )
    if not spec.available:
        raise Problem(
            422,
            "model_unavailable",
            f"model {spec.name!r} has no configured provider credentials on this server",
            errors=[{"field": "model", "message": "provider not configured", "type": "model_unavailable"}],
        )
    return spec


async def check_codebase(state, codebase_id: str, user_id: str) -> None:
    """422 unless ``codebase_id`` names one of the caller's codebases."""
    async with state.db.session() as s:
        codebase = await s.get(Codebase, codebase_id)
    if codebase is None or codebase.user_id != user_id:
        raise Problem(
            422,
            "unknown_codebase",
            f"no codebase {codebase_id!r}",
            errors=[{"field": "codebase_id", "message": "unknown codebase", "type": "unknown_codebase"}],
        )


async def start_new_task(request: Request, state, client, new: NewTask) -> Task:
    """Creates the task and starts its run; 503 if Temporal cannot take it.

    With an Idempotency-Key the task id was reserved before, so a retry reuses it.
    """
    reserved = getattr(request.state, "reserved_resource_id", None)
    task_id = await reserved("task") if reserved is not None else None
    try:
        return await create_task(state.db, client, state.settings, new, task_id=task_id)
    except StartFailed as err:
        raise Problem(503, "temporal_unavailable", f"the task could not be started: {err}") from None


@router.post(
    "/tasks",
    operation_id="createTask",
    status_code=201,
    response_model=TaskPublic,
    summary="Create a task",
    responses=problem_responses(401, 403, 409, 422, 429, 503),
)
async def create(
    body: TaskCreate,
    request: Request,
    response: Response,
    principal: TasksWrite,
    state: State,
    settings: SettingsDep,
    catalog: Catalog,
    client: TemporalClient,
) -> TaskPublic:
    spec = resolve_model(catalog, body.model)
    if body.notify_email and settings.smtp_url is None:
        # Accepting an address and never writing to it would be a silent no-op.
        raise Problem(
            422,
            "notify_email_unavailable",
            "email notifications are not available: this server has no SMTP server configured",
            errors=[{
                "field": "notify_email",
                "message": "no SMTP server is configured (CODETETHER_SMTP_URL)",
                "type": "notify_email_unavailable",
            }],
        )
    for field_name in ("webhook_url", "callback_url"):
        url = getattr(body, field_name)
        if not url:
            continue
        try:
            await validate_webhook_url(url, allow_private=settings.webhook_allow_private)
        except UnsafeURL as err:
            raise Problem(
                422,
                "invalid_webhook_url",
                f"{field_name}: {err}",
                errors=[{"field": field_name, "message": str(err), "type": "invalid_webhook_url"}],
            ) from None
    if body.codebase_id:
        await check_codebase(state, body.codebase_id, principal.user_id)
    new = NewTask(
        owner_id=principal.user_id,
        title=body.title,
        description=body.description or "",
        agent_type=body.agent_type,
        model=spec.name,
        priority=body.priority,
        metadata=body.metadata,
        codebase_id=body.codebase_id,
        webhook_url=body.webhook_url,
        callback_url=body.callback_url,
        webhook_events=body.webhook_events,
        webhook_secret=body.webhook_secret,
        notify_email=body.notify_email,
        input_timeout_seconds=body.input_timeout_seconds,
        concurrency_limit=principal.concurrency_limit,
        request_id=getattr(request.state, "request_id", None),
        max_turns=body.max_turns or settings.agent_max_turns,
    )
    task = await start_new_task(request, state, client, new)
    response.headers["Location"] = f"/v1/automation/tasks/{task.id}"
    return to_public(task)


@router.get(
    "/tasks/{task_id}",
    operation_id="getTask",
    response_model=TaskPublic,
    summary="Get a task (optionally wait for it to finish or ask a question)",
    responses=problem_responses(401, 403, 404, 429),
)
async def get_task(
    task_id: str,
    principal: TasksRead,
    state: State,
    wait: Annotated[
        int, Query(ge=0, le=MAX_WAIT, description="Hold up to N seconds until the task is terminal or needs_input.")
    ] = 0,
) -> TaskPublic:
    if wait:
        async with stream_slots(state).hold(principal.user_id):
            task = await wait_for_status(state, task_id, principal.user_id, WAITING_STATUSES, float(wait))
    else:
        task = await load_task(state, task_id, principal.user_id)
    return to_public(task)


def _encode_cursor(task: Task) -> str:
    # Full precision: two tasks created in the same millisecond must not fall between pages.
    raw = json.dumps([as_utc(task.created_at).isoformat(), task.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, tid = json.loads(base64.urlsafe_b64decode(padded.encode()))
        when = parse_iso(created)
        if when is None or not isinstance(tid, str):
            raise ValueError
        return when, tid
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise Problem(400, "invalid_cursor", "the cursor is not one this API returned") from None


def _ms_floor(when: datetime) -> datetime:
    return when.replace(microsecond=when.microsecond - when.microsecond % 1000)


def _parse_time(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        raise Problem(
            422,
            "validation_error",
            f"{name} must be an ISO 8601 time",
            errors=[{"field": name, "message": "not an ISO 8601 time", "type": "datetime_parsing"}],
        ) from None


@router.get(
    "/tasks",
    operation_id="listTasks",
    response_model=TaskList,
    summary="List tasks, newest first",
    responses=problem_responses(400, 401, 403, 422, 429),
)
async def list_tasks(
    principal: TasksRead,
    session: DbSession,
    status: Annotated[str | None, Query(description="Comma-separated statuses.", max_length=200)] = None,
    agent_type: Annotated[str | None, Query(max_length=20)] = None,
    model: Annotated[str | None, Query(max_length=100)] = None,
    codebase_id: Annotated[str | None, Query(max_length=40)] = None,
    created_after: Annotated[str | None, Query(description="ISO 8601 time", max_length=40)] = None,
    created_before: Annotated[str | None, Query(description="ISO 8601 time", max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> TaskList:
    q = select(Task).where(Task.user_id == principal.user_id)
    if status:
        wanted = [s.strip() for s in status.split(",") if s.strip()]
        known = {"queued", "running", "needs_input", "completed", "failed", "cancelled"}
        bad = [s for s in wanted if s not in known]
        if bad:
            raise Problem(
                422,
                "validation_error",
                f"unknown status {bad[0]!r}",
                errors=[{"field": "status", "message": f"must be among {sorted(known)}", "type": "enum"}],
            )
        q = q.where(Task.status.in_(wanted))
    if agent_type:
        q = q.where(Task.agent_type == agent_type)
    if model:
        q = q.where(Task.model == model)
    if codebase_id:
        q = q.where(Task.codebase_id == codebase_id)
    after = _parse_time("created_after", created_after)
    before = _parse_time("created_before", created_before)
    # Times are compared at the millisecond precision the API shows them with, so a task's own
    # created_at as the bound excludes that task in both directions.
    if after is not None:
        q = q.where(Task.created_at >= _ms_floor(after) + timedelta(milliseconds=1))
    if before is not None:
        q = q.where(Task.created_at < _ms_floor(before))
    if cursor:
        c_time, c_id = _decode_cursor(cursor)
        q = q.where(or_(Task.created_at < c_time, and_(Task.created_at == c_time, Task.id < c_id)))
    q = q.order_by(Task.created_at.desc(), Task.id.desc()).limit(limit + 1)
    rows = list((await session.execute(q)).scalars())
    next_cursor = _encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return TaskList(data=[to_public(t) for t in rows[:limit]], next_cursor=next_cursor)


@router.delete(
    "/tasks/{task_id}",
    operation_id="cancelTask",
    response_model=TaskPublic,
    summary="Cancel a queued, running or waiting task",
    responses={
        202: {"description": "Cancellation requested; the task has not confirmed it yet", "model": TaskPublic},
        **problem_responses(401, 403, 404, 409, 429, 503),
    },
)
async def cancel_task(
    task_id: str, principal: TasksWrite, state: State, client: TemporalClient, response: Response
) -> TaskPublic:
    task = await load_task(state, task_id, principal.user_id)
    if task.status == "cancelled":
        return to_public(task)
    if task.status in TERMINAL_STATUSES:
        raise Problem(409, "task_not_cancellable", f"the task is already {task.status}")
    try:
        await client.get_workflow_handle(task_id).cancel()
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise Problem(503, "temporal_unavailable", f"cancel failed: {err.message}") from None
    task = await wait_for_status(state, task_id, principal.user_id, TERMINAL_STATUSES, CANCEL_WAIT_SECONDS)
    if task.status in ("completed", "failed"):
        raise Problem(409, "task_not_cancellable", f"the task finished ({task.status}) before it could be cancelled")
    if task.status != "cancelled":
        response.status_code = 202
    return to_public(task)


__all__ = ["router", "load_task", "wait_for_status", "to_public", "as_utc"]
