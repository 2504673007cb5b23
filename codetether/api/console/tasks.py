"""Console task pages: the New Task form (tags and an output schema too), and a task's page with
its result (``result_json`` as a table), tags, artifacts and the patch as a diff, the live event
log (an SSE stream of the same event log as ``GET /v1/automation/tasks/{id}/events``, progress
rows with their message), Cancel, the Answer box (and the reply link) and follow-up messages.
The list is :mod:`codetether.api.console.tasklist`.

Every action calls the services the REST routes call (``codetether/tasks/service.py``,
``codetether/tasks/launch.py``, ``codetether/tasks/conversation.py``); another user's task is 404.
"""

from __future__ import annotations

import json
import re

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sse_starlette import ServerSentEvent

from codetether.api.console.artifacts import console_artifacts, patch_view
from codetether.api.console.tasklist import codebases
from codetether.api.edge.answer_form import answer_from_form
from codetether.api.edge.streamcap import HeldEventSourceResponse, stream_slots
from codetether.api.console.web import (
    PAGE_HEADERS,
    PREFIX,
    ConsoleUser,
    check_csrf,
    fragment,
    get_state,
    log,
    page,
)
from codetether.tasks import conversation
from codetether.tasks import service as taskops
from codetether.accounts.service import TIER_CONCURRENCY
from codetether.core.errors import ServiceError
from codetether.tasks.events import list_events
from codetether.tasks.eventstream import follow_events, parse_seq
from codetether.core.logging import request_id_var
from codetether.tasks.launch import NewTask
from codetether.tasks.tags import check_tags
from codetether.agent.prompts import AGENT_TYPE_CHOICES as AGENT_TYPES
from codetether.tasks.view import task_to_dict
from codetether.tasks.contracts import TERMINAL_STATUSES

router = APIRouter(prefix=PREFIX, include_in_schema=False)

KEEPALIVE_SECONDS = 15
_TAG_SEPARATORS = re.compile(r"[\s,]+")


def _concurrency(user) -> int | None:
    return TIER_CONCURRENCY.get(user.tier, 5)


@router.get("/tasks/new", operation_id="consoleNewTaskPage")
async def new_task_page(request: Request, user: ConsoleUser) -> Response:
    return await _new_task_form(request, user, {})


async def _new_task_form(request: Request, user, values: dict, error: ServiceError | None = None) -> Response:
    state = get_state(request)
    return page(request, "task_new.html", {
        "values": values, "error": error, "agent_types": AGENT_TYPES,
        "models": [m for m in state.catalog.public_list()], "default_model": state.catalog.default_model,
        "codebases": await codebases(state, user.id),
    }, status=error.status if error else 200, user=user)


@router.post("/tasks", operation_id="consoleCreateTask")
async def create_task_action(request: Request, user: ConsoleUser) -> Response:
    form = await request.form()
    check_csrf(request, form)
    state = get_state(request)
    values = {k: str(form.get(k) or "").strip() for k in ("title", "description", "model", "agent_type",
                                                          "priority", "codebase_id", "tags", "output_schema")}
    try:
        if not values["title"] or len(values["title"]) > 200:
            raise ServiceError(422, "validation_error", "Give the task a title (1 to 200 characters).", field="title")
        if not values["description"]:
            raise ServiceError(422, "validation_error", "Describe what the agent should do.", field="description")
        if values["agent_type"] and values["agent_type"] not in AGENT_TYPES:
            raise ServiceError(422, "validation_error", "Unknown agent type.", field="agent_type")
        try:
            priority = int(values["priority"] or 0)
        except ValueError:
            raise ServiceError(422, "validation_error", "Priority must be a whole number.", field="priority") from None
        # In their order without repeats (as REST's schema gives them); 422 for a bad one.
        tags = check_tags([t for t in _TAG_SEPARATORS.split(values["tags"]) if t])
        output_schema = _output_schema(values["output_schema"])
        spec = taskops.resolve_model(state.catalog, values["model"] or None)
        client = await state.temporal()
        new = NewTask(
            owner_id=user.id, title=values["title"], description=values["description"],
            agent_type=values["agent_type"] or "general", model=spec.name, priority=priority,
            codebase_id=values["codebase_id"] or None, concurrency_limit=_concurrency(user),
            request_id=request_id_var.get(), tags=tags, output_schema=output_schema,
        )
        # The same input rules as every face (tags, output_schema, ...), checked by start_task.
        task = await taskops.start_task(state.db, client, state.settings, new)
    except ServiceError as err:
        return await _new_task_form(request, user, values, err)
    log.info("console: %s created task %s", user.id, task.id)
    return RedirectResponse(f"{PREFIX}/tasks/{task.id}", status_code=303, headers=PAGE_HEADERS)


def _output_schema(text: str) -> dict | None:
    if not text:
        return None
    def refuse(constant: str):
        raise ValueError(f"{constant} is not JSON")

    try:
        # Strict JSON, as a REST body: NaN and Infinity are refused.
        return json.loads(text, parse_constant=refuse)
    except ValueError as err:
        raise ServiceError(422, "validation_error", f"output_schema: not valid JSON ({err})",
                           field="output_schema") from None


def _json_cell(value) -> dict:
    """A ``result_json`` value for the table: text as it is, a number, true, false or null as its
    JSON, an object or array as indented JSON (``json``: shown as a block)."""
    if isinstance(value, str):
        return {"text": value, "json": False}
    if not isinstance(value, (dict, list)):
        return {"text": json.dumps(value), "json": False}
    return {"text": json.dumps(value, indent=2, ensure_ascii=False), "json": True}


def event_message(body: str) -> str | None:
    """The message of a ``task.progress`` event (``edit: app.py``, ``bash: pytest``), from its body."""
    try:
        progress = (json.loads(body).get("data") or {}).get("progress") or {}
    except (ValueError, AttributeError):
        return None
    message = progress.get("message") if isinstance(progress, dict) else None
    return message if isinstance(message, str) else None


async def _task_context(request: Request, user, task_id: str) -> dict:
    state = get_state(request)
    task = await taskops.load_task(state.db, task_id, user.id)
    view = task_to_dict(task)
    result_rows = None
    if isinstance(view.get("result_json"), dict):
        result_rows = [(key, _json_cell(value)) for key, value in view["result_json"].items()]
    return {"task": view, "terminal": task.status in TERMINAL_STATUSES, "last_seq": task.last_seq,
            "artifacts": console_artifacts(view), "diff": await patch_view(state.db, view, user.id),
            "result_rows": result_rows}


@router.get("/tasks/{task_id}", operation_id="consoleTask")
async def task_page(request: Request, task_id: str, user: ConsoleUser) -> Response:
    state = get_state(request)
    ctx = await _task_context(request, user, task_id)
    events = await list_events(state.db, task_id, after=0, limit=1000)
    ctx["events"] = [{"seq": e.seq, "type": e.type, "created_at": e.created_at,
                      "message": event_message(e.body) if e.type == "task.progress" else None} for e in events]
    ctx["notice"] = request.query_params.get("notice")
    return page(request, "task.html", ctx, user=user)


@router.get("/tasks/{task_id}/panel", operation_id="consoleTaskPanel")
async def task_panel(request: Request, task_id: str, user: ConsoleUser) -> Response:
    """The live part of the task page, fetched again by console.js after each event."""
    return fragment(request, "_task_panel.html", await _task_context(request, user, task_id))


@router.get("/tasks/{task_id}/stream", operation_id="consoleTaskStream")
async def task_stream(request: Request, task_id: str, user: ConsoleUser) -> Response:
    state = get_state(request)
    task = await taskops.load_task(state.db, task_id, user.id)
    if request.headers.get("last-event-id"):
        start = parse_seq("Last-Event-ID", request.headers["last-event-id"])
    else:
        start = parse_seq("after", request.query_params.get("after"))
    if task.status in TERMINAL_STATUSES and task.last_seq <= start:
        return Response(status_code=204)  # tells EventSource to stop reconnecting
    # The same per-user cap on held-open requests as the API's streams and long-polls.
    release = stream_slots(state).take(user.id)

    async def stream():
        async for event in follow_events(state.db, state.task_watcher, task_id, start, idle_timeout=KEEPALIVE_SECONDS):
            yield ServerSentEvent(data=event.body, id=str(event.seq), event=event.type)

    return HeldEventSourceResponse(stream(), release=release, ping=KEEPALIVE_SECONDS,
                                   headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.post("/tasks/{task_id}/answer", operation_id="consoleAnswerTask")
async def answer(request: Request, task_id: str, user: ConsoleUser) -> Response:
    form = await request.form()
    check_csrf(request, form)
    state = get_state(request)
    message = str(form.get("message") or "").strip()
    choice, decision = (str(form.get(k) or "") or None for k in ("choice", "decision"))
    task = await taskops.load_task(state.db, task_id, user.id)
    answer, problem = answer_from_form((task.required_action or {}).get("answer_schema"), form)
    if problem is not None:
        raise ServiceError(422, "invalid_answer", problem, field="answer")
    if not message and choice is None and decision is None and answer is None:
        raise ServiceError(422, "validation_error", "Write an answer first.", field="message")
    # A refusal (ConversationError, or the action's rules) is shown by the console's error page.
    await conversation.provide_input(state.db, await state.temporal(), task, message or None,
                                     str(form.get("required_action_id") or "") or None,
                                     choice=choice, answer=answer, decision=decision)
    log.info("console: %s answered task %s", user.id, task_id)
    return RedirectResponse(f"{PREFIX}/tasks/{task_id}", status_code=303, headers=PAGE_HEADERS)


@router.post("/tasks/{task_id}/messages", operation_id="consoleTaskMessage")
async def message(request: Request, task_id: str, user: ConsoleUser) -> Response:
    form = await request.form()
    check_csrf(request, form)
    state = get_state(request)
    text = str(form.get("message") or "").strip()
    if not text:
        raise ServiceError(422, "validation_error", "Write a message first.", field="message")
    task = await taskops.load_task(state.db, task_id, user.id)
    await conversation.send_message(state.db, await state.temporal(), state.settings, task, text,
                                    concurrency_limit=_concurrency(user), request_id=request_id_var.get())
    log.info("console: %s sent a message to task %s", user.id, task_id)
    return RedirectResponse(f"{PREFIX}/tasks/{task_id}", status_code=303, headers=PAGE_HEADERS)


@router.post("/tasks/{task_id}/cancel", operation_id="consoleCancelTask")
async def cancel(request: Request, task_id: str, user: ConsoleUser) -> Response:
    check_csrf(request, await request.form())
    state = get_state(request)
    outcome = await taskops.cancel_task(state.db, await state.temporal(), task_id, user.id)
    confirmed = outcome.confirmed
    log.info("console: %s cancelled task %s", user.id, task_id)
    notice = "" if confirmed else "?notice=Cancellation+requested"
    return RedirectResponse(f"{PREFIX}/tasks/{task_id}{notice}", status_code=303, headers=PAGE_HEADERS)
