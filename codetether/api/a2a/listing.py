"""``ListTasks`` of the A2A face (``handler.py``).

Without ``contextId``: the caller's conversations, newest first, each as its current run (the
task service's filters and cursor; ``totalSize`` counts every match). With ``contextId``: every
run of that conversation (its A2A tasks), newest first, paged by offset. ``status`` and
``statusTimestampAfter`` filter both. Refused with InvalidParams: ``pageSize`` outside 1..100, an
unknown ``status``, a negative ``historyLength`` (``handler.history_length_of``), a bad page token.
"""

from __future__ import annotations

from datetime import datetime

from a2a.types.a2a_pb2 import ListTasksRequest, ListTasksResponse, TaskState
from a2a.utils.errors import InvalidParamsError

from codetether.api.a2a.access import find_task
from codetether.api.a2a.errors import a2a_error
from codetether.api.auth import Principal
from codetether.core.db import Database
from codetether.core.errors import ServiceError
from codetether.core.ids import as_utc
from codetether.protocols import a2a_runs
from codetether.protocols.a2a_runs import RunState
from codetether.protocols.a2a_view import STATUS_OF, to_a2a_task
from codetether.tasks import service as taskops

DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 50, 100


def _invalid(message: str) -> InvalidParamsError:
    return InvalidParamsError(message, data={"code": "validation_error"})


def _page_size(params: ListTasksRequest) -> int:
    size = params.page_size if params.HasField("page_size") else DEFAULT_PAGE_SIZE
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise _invalid(f"pageSize must be between 1 and {MAX_PAGE_SIZE}")
    return size


def _statuses(params: ListTasksRequest, raw_status: object) -> list[str] | None:
    """The CodeTether statuses the filter means; [] for a valid A2A state no task ever has.
    ``raw_status``: the value as sent (the SDK reads an unknown name as unspecified)."""
    known = TaskState.keys()  # an enum wrapper, not a dict
    if isinstance(raw_status, str) and raw_status not in known:
        raise _invalid(f"unknown status {raw_status!r}")
    if params.status == TaskState.TASK_STATE_UNSPECIFIED:
        return None
    if params.status not in TaskState.values():
        raise _invalid(f"unknown status {params.status!r}")
    return [STATUS_OF[params.status]] if params.status in STATUS_OF else []


def _since(params: ListTasksRequest) -> datetime | None:
    if not params.HasField("status_timestamp_after"):
        return None
    return as_utc(params.status_timestamp_after.ToDatetime())


async def list_a2a_tasks(
    db: Database, params: ListTasksRequest, principal: Principal, history_length: int | None, *,
    raw_status: object = None,
) -> ListTasksResponse:
    page_size, statuses, since = _page_size(params), _statuses(params, raw_status), _since(params)
    if params.context_id:
        runs, total, next_token = await _context_runs(db, params, principal, statuses, since, page_size)
    elif statuses == []:
        runs, total, next_token = [], 0, None
    else:
        filt = taskops.TaskFilter(statuses=statuses, updated_since=since)
        try:
            rows, next_token = await taskops.list_tasks(db, principal.user_id, filt, limit=page_size,
                                                        cursor=params.page_token or None)
        except ServiceError as err:
            raise a2a_error(err) from None
        total = await taskops.count_tasks(db, principal.user_id, filt)
        runs = await a2a_runs.current_states(db, rows)
    return ListTasksResponse(
        tasks=[to_a2a_task(r, history_length=history_length, include_artifacts=params.include_artifacts) for r in runs],
        next_page_token=next_token or "",
        page_size=page_size,
        total_size=total,
    )


async def _context_runs(
    db: Database, params: ListTasksRequest, principal: Principal, statuses: list[str] | None,
    since: datetime | None, page_size: int,
) -> tuple[list[RunState], int, str | None]:
    try:
        offset = int(params.page_token) if params.page_token else 0
    except ValueError:
        offset = -1
    if offset < 0:
        raise _invalid("pageToken is not one this list gave")
    task = await find_task(db, params.context_id, principal)
    runs = await a2a_runs.all_states(db, task) if task is not None else []
    if statuses is not None:
        runs = [r for r in runs if r.status in statuses]
    if since is not None:
        runs = [r for r in runs if r.updated_at is not None and as_utc(r.updated_at) >= since]
    page = runs[offset:offset + page_size]
    more = offset + page_size < len(runs)
    return page, len(runs), str(offset + page_size) if more else None
