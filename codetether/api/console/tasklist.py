"""The console's task list (``/console/tasks``): filtered by status, model, codebase and tag, with
each task's tags as chips (a click filters by that tag), and "Cancel selected", which cancels the
ticked tasks with the bulk cancel service of ``POST /v1/automation/tasks/cancel``
(:func:`codetether.tasks.bulk_cancel.cancel_tasks`) and shows how many were cancelled and skipped.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from codetether.api.console.web import PAGE_HEADERS, PREFIX, ConsoleUser, check_csrf, get_state, log, page
from codetether.core.errors import ServiceError
from codetether.core.models import Codebase
from codetether.tasks import service as taskops
from codetether.tasks.bulk_cancel import cancel_tasks
from codetether.tasks.tags import check_tags
from codetether.tasks.view import task_to_dict

router = APIRouter(prefix=PREFIX, include_in_schema=False)

PAGE_SIZE = 20
FILTER_KEYS = ("status", "model", "codebase_id", "tag")
# Said by a fixed code in the redirect's query, never as text taken from the URL.
CANCEL_ERRORS = {
    "none_selected": "Select at least one task to cancel.",
    "too_many_tasks": "Too many tasks selected; cancel fewer at once.",
}


async def codebases(state, user_id: str) -> list[Codebase]:
    async with state.db.session() as s:
        rows = await s.execute(select(Codebase).where(Codebase.user_id == user_id).order_by(Codebase.name))
        return list(rows.scalars())


def _count(n: int, word: str) -> str:
    return f"{n} task{'' if n == 1 else 's'} {word}"


@router.get("/tasks", operation_id="consoleTasks")
async def tasks_page(request: Request, user: ConsoleUser) -> Response:
    state = get_state(request)
    q = request.query_params
    status = q.get("status") or None
    tag = (q.get("tag") or "").strip() or None
    filters = taskops.TaskFilter(statuses=taskops.parse_statuses(status), model=q.get("model") or None,
                                 codebase_id=q.get("codebase_id") or None,
                                 tags=check_tags([tag], field_name="tag") if tag else None)
    rows, next_cursor = await taskops.list_tasks(state.db, user.id, filters, limit=PAGE_SIZE,
                                                 cursor=q.get("cursor") or None)
    keep = {k: v for k, v in (("status", status), ("model", filters.model),
                              ("codebase_id", filters.codebase_id), ("tag", tag)) if v}
    outcome = None
    if (q.get("cancelled") or "").isdigit() and (q.get("skipped") or "").isdigit():
        outcome = {"cancelled": int(q["cancelled"]), "skipped": int(q["skipped"])}
    return page(request, "tasks.html", {
        "tasks": [task_to_dict(t) for t in rows], "next_cursor": next_cursor, "filters": keep,
        "statuses": taskops.STATUSES, "models": [m.name for m in state.catalog.public_list()],
        "codebases": await codebases(state, user.id), "paged": bool(q.get("cursor")),
        "outcome": outcome, "count": _count,
        "error": CANCEL_ERRORS.get(q.get("error") or ""),
    }, user=user)


@router.post("/tasks/cancel", operation_id="consoleCancelTasks")
async def cancel_selected(request: Request, user: ConsoleUser) -> Response:
    form = await request.form()
    check_csrf(request, form)
    # Back to the list as it was filtered, with the outcome in the query (so a reload does not post again).
    back = {k: str(form.get(k)) for k in FILTER_KEYS if form.get(k)}
    task_ids = [i for i in form.getlist("task_ids") if isinstance(i, str) and i]
    if not task_ids:
        back["error"] = "none_selected"
        return RedirectResponse(f"{PREFIX}/tasks?{urlencode(back)}", status_code=303, headers=PAGE_HEADERS)
    state = get_state(request)
    try:
        outcome = await cancel_tasks(state.db, await state.temporal(), user.id, task_ids=task_ids)
    except ServiceError as err:
        if err.code != "too_many_tasks":
            raise
        back["error"] = err.code
        return RedirectResponse(f"{PREFIX}/tasks?{urlencode(back)}", status_code=303, headers=PAGE_HEADERS)
    log.info("console: %s cancelled %d tasks (%d skipped)", user.id, len(outcome.cancelled), len(outcome.skipped))
    back.update(cancelled=str(len(outcome.cancelled)), skipped=str(len(outcome.skipped)))
    return RedirectResponse(f"{PREFIX}/tasks?{urlencode(back)}", status_code=303, headers=PAGE_HEADERS)
