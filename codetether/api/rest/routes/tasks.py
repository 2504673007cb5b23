"""Task routes: ``/v1/automation/tasks`` create, get (with ``?wait``), list, cancel.

Reads come from the database (the workflows keep it current), so they answer without a worker.
Writes go to Temporal: start for create, cancel for DELETE.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from codetether.api.deps import (
    Catalog,
    SettingsDep,
    State,
    TasksRead,
    TasksWrite,
    TemporalClient,
)
from codetether.api.edge.errors import problem_responses
from codetether.api.edge.idempotency import REPLAYED_HEADER, claims_in_route, refuse
from codetether.api.rest.schemas.tasks import Tag, TaskCreate, TaskList, TaskPublic, TasksCancel, TasksCancelled
from codetether.api.edge.streamcap import stream_slots
from codetether.tasks import service as taskops
from codetether.tasks.bulk_cancel import cancel_tasks
from codetether.tasks.tags import check_tags
from codetether.agent.catalog import ModelCatalog, ModelSpec
from codetether.core.ids import as_utc
from codetether.core.models import Task
from codetether.tasks.launch import NewTask
from codetether.tasks.view import task_to_dict
from codetether.tasks.contracts import TASK_STATUSES, WAITING_STATUSES

router = APIRouter(prefix="/v1/automation", tags=["tasks"])

MAX_WAIT = 60
_STATUS = "(" + "|".join(TASK_STATUSES) + ")"
STATUS_LIST_PATTERN = f"^ *{_STATUS} *(, *{_STATUS} *)*$"


def to_public(task: Task) -> TaskPublic:
    return TaskPublic.model_validate(task_to_dict(task))


# The rules live in codetether/tasks/service.py (shared with the A2A and MCP faces); these keep the
# route modules' call sites short. A ServiceError becomes a problem response (codetether/api/edge/errors.py).
async def load_task(state, task_id: str, user_id: str) -> Task:
    return await taskops.load_task(state.db, task_id, user_id)


async def wait_for_status(state, task_id: str, user_id: str, statuses, timeout: float) -> Task:
    return await taskops.wait_for_status(state.db, task_id, user_id, statuses, timeout)


def resolve_model(catalog: ModelCatalog, name: str | None) -> ModelSpec:
    return taskops.resolve_model(catalog, name)


async def check_codebase(state, codebase_id: str, user_id: str) -> None:
    await taskops.check_codebase(state.db, codebase_id, user_id)


async def start_new_task(request: Request, state, client, new: NewTask, response: Response | None = None) -> Task:
    """Checks, creates and starts the task; 503 if Temporal cannot take it.

    With an Idempotency-Key the task id was reserved before, so a retry reuses it. A route marked
    :func:`codetether.api.edge.idempotency.claims_in_route` claims the key here instead, in the transaction that
    stores the task row; a retry then answers from that row (``Idempotent-Replayed: true``).
    """
    ctx = getattr(request.state, "idempotent_key", None)
    if ctx is not None and ctx.deferred is not None and response is not None:
        ctx.used = True
        outcome = await taskops.start_task_keyed(state.db, client, state.settings, new, ctx.deferred)
        if outcome.task is None:
            assert outcome.claim is not None
            refuse(outcome.claim)
        if outcome.replayed:
            response.headers[REPLAYED_HEADER] = "true"
        return outcome.task
    reserved = getattr(request.state, "reserved_resource_id", None)
    task_id = await reserved("task") if reserved is not None else None
    return await taskops.start_task(state.db, client, state.settings, new, task_id=task_id)


@router.post(
    "/tasks",
    operation_id="createTask",
    status_code=201,
    response_model=TaskPublic,
    summary="Create a task",
    responses=problem_responses(401, 402, 403, 409, 422, 429, 503),
)
@claims_in_route
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
        tags=body.tags,
        output_schema=body.output_schema,
        max_cost_usd=principal.capped_cost(body.max_cost_usd),
        attachments=[a.model_dump(exclude_none=True) for a in body.attachments],
        require_approval=body.require_approval,
    )
    task = await start_new_task(request, state, client, new, response)
    response.headers["Location"] = f"/v1/automation/tasks/{task.id}"
    return to_public(task)


# Before /tasks/{task_id}: for a method neither route has, the router answers 405 with the Allow
# header of the first route whose path matches.
@router.post(
    "/tasks/cancel",
    operation_id="cancelTasks",
    response_model=TasksCancelled,
    summary="Cancel many tasks, by id or by filter",
    description="Each chosen task gets the same durable cancellation as DELETE /tasks/{task_id}. "
    "`skipped` lists ids that are not the caller's, tasks already finished and tasks that finished "
    "before the cancellation reached them. More than 1,000 matches is 422 `too_many_tasks`.",
    responses=problem_responses(401, 403, 422, 429, 503),
)
async def cancel_many(body: TasksCancel, principal: TasksWrite, state: State, client: TemporalClient) -> TasksCancelled:
    filt = None
    if body.filter is not None:
        f = body.filter
        filt = taskops.TaskFilter(
            statuses=taskops.parse_statuses(f.status),
            agent_type=f.agent_type,
            model=f.model,
            created_after=taskops.parse_time("filter.created_after", f.created_after),
            created_before=taskops.parse_time("filter.created_before", f.created_before),
            tags=check_tags([f.tag] if isinstance(f.tag, str) else f.tag, field_name="filter.tag") or None,
        )
    outcome = await cancel_tasks(state.db, client, principal.user_id, task_ids=body.task_ids, filt=filt)
    return TasksCancelled(cancelled=outcome.cancelled, skipped=outcome.skipped)


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


@router.get(
    "/tasks",
    operation_id="listTasks",
    response_model=TaskList,
    summary="List tasks, newest first",
    responses=problem_responses(400, 401, 403, 422, 429),
)
async def list_tasks(
    principal: TasksRead,
    state: State,
    status: Annotated[str | None, Query(description="Comma-separated statuses.", max_length=200,
                                        pattern=STATUS_LIST_PATTERN)] = None,
    agent_type: Annotated[str | None, Query(max_length=20)] = None,
    model: Annotated[str | None, Query(max_length=100)] = None,
    codebase_id: Annotated[str | None, Query(max_length=40)] = None,
    created_after: Annotated[str | None, Query(description="Only tasks created after this RFC 3339 time.",
                                               max_length=40, json_schema_extra={"format": "date-time"})] = None,
    created_before: Annotated[str | None, Query(description="Only tasks created before this RFC 3339 time.",
                                                max_length=40, json_schema_extra={"format": "date-time"})] = None,
    tag: Annotated[list[Tag] | None, Query(description="Only tasks having this tag; repeat for tasks having every one.",
                                           max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> TaskList:
    filt = taskops.TaskFilter(
        statuses=taskops.parse_statuses(status),
        agent_type=agent_type,
        model=model,
        codebase_id=codebase_id,
        created_after=taskops.parse_time("created_after", created_after),
        created_before=taskops.parse_time("created_before", created_before),
        tags=check_tags(tag, field_name="tag") or None,
    )
    rows, next_cursor = await taskops.list_tasks(state.db, principal.user_id, filt, limit=limit, cursor=cursor)
    return TaskList(data=[to_public(t) for t in rows], next_cursor=next_cursor)


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
    outcome = await taskops.cancel_task(state.db, client, task_id, principal.user_id)
    if not outcome.confirmed:
        response.status_code = 202
    return to_public(outcome.task)


__all__ = ["router", "load_task", "wait_for_status", "to_public", "as_utc"]
