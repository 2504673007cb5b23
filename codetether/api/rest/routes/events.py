"""The event log route: ``GET /v1/automation/tasks/{task_id}/events``.

As JSON it answers ``{"data": [...], "has_more": ...}`` with each stored event payload and its
``seq``, from ``?after=SEQ``. With ``Accept: text/event-stream`` it is an SSE stream (sse-starlette):
``id:`` is the seq, ``event:`` the event type, ``data:`` the stored compact body byte for byte; it
replays from ``Last-Event-ID`` (or ``?after``), follows live events, sends keep-alive comments and
ends after the terminal event of the task's current run. A stream asked for after the end of a
finished task answers ``204 No Content``, which tells an ``EventSource`` to stop reconnecting.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from sse_starlette import ServerSentEvent

from codetether.api.deps import State, TasksRead
from codetether.api.edge.errors import Problem, problem_responses
from codetether.api.rest.routes.tasks import load_task
from codetether.api.rest.schemas.conversation import TaskEventList
from codetether.api.edge.streamcap import HeldEventSourceResponse, stream_slots
from codetether.tasks.events import list_events
from codetether.tasks.eventstream import follow_events
from codetether.tasks.contracts import TERMINAL_STATUSES

router = APIRouter(prefix="/v1/automation", tags=["events"])

KEEPALIVE_SECONDS = 15
# Tells EventSource clients how soon to reconnect after a dropped connection (ms).
RECONNECT_MS = 2000
MAX_PAGE = 1000



# Event seqs are 32-bit integers in the database; larger values cannot name an event.
MAX_SEQ = 2**31 - 1


def _last_event_id(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        seq = int(value.strip())
    except ValueError:
        raise Problem(400, "invalid_last_event_id", "Last-Event-ID must be an event seq (an integer)") from None
    if seq < 0 or seq > MAX_SEQ:
        raise Problem(400, "invalid_last_event_id", f"Last-Event-ID must be between 0 and {MAX_SEQ}")
    return seq


@router.get(
    "/tasks/{task_id}/events",
    operation_id="listTaskEvents",
    response_model=TaskEventList,
    summary="The task's event log, as JSON or as a Server-Sent Events stream",
    description=(
        "Ordered by `seq`. Send `Accept: text/event-stream` for an SSE stream that replays from "
        "`Last-Event-ID` (or `after`), follows live events and ends after the terminal event."
    ),
    responses={
        200: {
            "description": "The events (JSON), or an SSE stream with `Accept: text/event-stream`",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/TaskEventList"}},
                "text/event-stream": {"schema": {"type": "string"}},
            },
        },
        204: {"description": "SSE only: the task finished and nothing follows the given event"},
        **problem_responses(400, 401, 403, 404, 422, 429),
    },
)
async def list_task_events(
    task_id: str,
    request: Request,
    principal: TasksRead,
    state: State,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ, description="Only events with a larger seq.")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="JSON only: at most this many events.")] = MAX_PAGE,
    last_event_id: Annotated[str, Header(
        alias="Last-Event-ID", max_length=40, description="The seq of the last event received; the stream resumes after it.",
        # Declared for clients; the route answers 400 invalid_last_event_id itself for anything else.
        json_schema_extra={"pattern": r"^(0|[1-9][0-9]{0,8})?$"})] = None,
) -> Response:
    task = await load_task(state, task_id, principal.user_id)
    resume = _last_event_id(last_event_id)
    start = resume if resume is not None else after

    if "text/event-stream" not in request.headers.get("accept", ""):
        events = await list_events(state.db, task_id, after=start, limit=limit + 1)
        more = len(events) > limit
        # The stored bodies go out as stored; only the seq is spliced in front.
        items = ",".join('{"seq":%d,%s' % (e.seq, e.body[1:]) for e in events[:limit])
        body = '{"data":[%s],"has_more":%s}' % (items, "true" if more else "false")
        return Response(content=body, media_type="application/json")

    if task.status in TERMINAL_STATUSES and task.last_seq <= start:
        return Response(status_code=204)

    release = stream_slots(state).take(principal.user_id)

    async def stream():
        first = True
        async for event in follow_events(state.db, state.task_watcher, task_id, start, idle_timeout=KEEPALIVE_SECONDS):
            yield ServerSentEvent(
                data=event.body, id=str(event.seq), event=event.type, retry=RECONNECT_MS if first else None
            )
            first = False

    return HeldEventSourceResponse(
        stream(),
        release=release,
        ping=KEEPALIVE_SECONDS,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
