"""The task rules every face shares: owned-task lookup, the checks before a task is created, the
filtered list with its cursor, and cancellation.

Called by the REST routes (``api/rest/routes/tasks.py``, ``conversation.py``, ``events.py``) and
the console (``api/console/tasks.py``). Refusals are :class:`core.errors.ServiceError`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from core.catalog import ModelCatalog, ModelSpec
from core.config import Settings
from core.db import Database
from core.errors import ServiceError
from core.ids import as_utc, parse_iso
from core.models import Codebase, Task
from core.netguard import UnsafeURL, validate_webhook_url
from workflows.types import TERMINAL_STATUSES, TaskStatus

WAIT_POLL_INTERVAL = 0.1
CANCEL_WAIT_SECONDS = 10.0
STATUSES = tuple(s.value for s in TaskStatus)


async def get_owned_task(db: Database, task_id: str, user_id: str) -> Task:
    """The caller's task, or 404 whether it does not exist or belongs to someone else."""
    async with db.session() as s:
        task = await s.get(Task, task_id)
    if task is None or task.user_id != user_id:
        raise ServiceError(404, "task_not_found", f"no task {task_id!r}")
    return task


async def wait_for_status(db: Database, task_id: str, user_id: str, statuses, timeout: float) -> Task:
    """Polls the task row until its status is in ``statuses`` or ``timeout`` passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    task = await get_owned_task(db, task_id, user_id)
    while task.status not in statuses and loop.time() < deadline:
        await asyncio.sleep(min(WAIT_POLL_INTERVAL, max(0.0, deadline - loop.time())))
        task = await get_owned_task(db, task_id, user_id)
    return task


def resolve_model(catalog: ModelCatalog, name: str | None) -> ModelSpec:
    """The catalog entry for ``name``; 422 for an unknown model or one without credentials."""
    spec = catalog.resolve(name)
    if spec is None:
        raise ServiceError(422, "unknown_model", f"unknown model {name!r}; see GET /v1/automation/models",
                           field="model")
    if not spec.available:
        raise ServiceError(422, "model_unavailable",
                           f"model {spec.name!r} has no configured provider credentials on this server", field="model")
    return spec


async def check_codebase(db: Database, codebase_id: str, user_id: str) -> None:
    """422 unless ``codebase_id`` names one of the caller's codebases."""
    async with db.session() as s:
        codebase = await s.get(Codebase, codebase_id)
    if codebase is None or codebase.user_id != user_id:
        raise ServiceError(422, "unknown_codebase", f"no codebase {codebase_id!r}", field="codebase_id")


async def check_new_task(db: Database, settings: Settings, catalog: ModelCatalog, user_id: str, *,
                         model: str | None, codebase_id: str | None = None, webhook_url: str | None = None,
                         callback_url: str | None = None, notify_email: str | None = None) -> ModelSpec:
    """Everything a new task is checked for before it is created; returns its model."""
    spec = resolve_model(catalog, model)
    if notify_email and settings.smtp_url is None:
        # Accepting an address and never writing to it would be a silent no-op.
        raise ServiceError(422, "notify_email_unavailable",
                           "email notifications are not available: this server has no SMTP server configured",
                           field="notify_email")
    for field_name, url in (("webhook_url", webhook_url), ("callback_url", callback_url)):
        if not url:
            continue
        try:
            await validate_webhook_url(url, allow_private=settings.webhook_allow_private)
        except UnsafeURL as err:
            raise ServiceError(422, "invalid_webhook_url", f"{field_name}: {err}", field=field_name) from None
    if codebase_id:
        await check_codebase(db, codebase_id, user_id)
    return spec


@dataclass
class TaskFilter:
    status: str | None = None  # comma-separated
    agent_type: str | None = None
    model: str | None = None
    codebase_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


# RFC 3339 date-time (what the spec declares as ``format: date-time``): date, time, offset.
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def parse_time(name: str, value: str | None) -> datetime | None:
    """A filter time given as an RFC 3339 date-time (an ISO 8601 time with its UTC offset)."""
    if value is None:
        return None
    try:
        if not _DATE_TIME.match(value):
            raise ValueError(value)
        return parse_iso(value.replace("z", "Z").replace("t", "T"))
    except ValueError:
        raise ServiceError(422, "validation_error", f"{name} must be an RFC 3339 date-time such as "
                           "2026-01-31T12:00:00Z", field=name) from None


def encode_cursor(task: Task) -> str:
    # Full precision: two tasks created in the same millisecond must not fall between pages.
    raw = json.dumps([as_utc(task.created_at).isoformat(), task.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, tid = json.loads(base64.urlsafe_b64decode(padded.encode()))
        when = parse_iso(created)
        if when is None or not isinstance(tid, str):
            raise ValueError
        return when, tid
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise ServiceError(400, "invalid_cursor", "the cursor is not one this API returned") from None


def _ms_floor(when: datetime) -> datetime:
    return when.replace(microsecond=when.microsecond - when.microsecond % 1000)


async def list_tasks(db: Database, user_id: str, filters: TaskFilter, *, limit: int = 20,
                     cursor: str | None = None) -> tuple[list[Task], str | None]:
    """The user's tasks, newest first, and the cursor of the next page (or None)."""
    q = select(Task).where(Task.user_id == user_id)
    if filters.status:
        wanted = [s.strip() for s in filters.status.split(",") if s.strip()]
        bad = [s for s in wanted if s not in STATUSES]
        if bad:
            raise ServiceError(422, "validation_error", f"unknown status {bad[0]!r}; use {', '.join(STATUSES)}",
                               field="status")
        q = q.where(Task.status.in_(wanted))
    if filters.agent_type:
        q = q.where(Task.agent_type == filters.agent_type)
    if filters.model:
        q = q.where(Task.model == filters.model)
    if filters.codebase_id:
        q = q.where(Task.codebase_id == filters.codebase_id)
    # Times are compared at the millisecond precision the API shows them with, so a task's own
    # created_at as the bound excludes that task in both directions.
    if filters.created_after is not None:
        q = q.where(Task.created_at >= _ms_floor(filters.created_after) + timedelta(milliseconds=1))
    if filters.created_before is not None:
        q = q.where(Task.created_at < _ms_floor(filters.created_before))
    if cursor:
        c_time, c_id = decode_cursor(cursor)
        q = q.where(or_(Task.created_at < c_time, and_(Task.created_at == c_time, Task.id < c_id)))
    q = q.order_by(Task.created_at.desc(), Task.id.desc()).limit(limit + 1)
    async with db.session() as s:
        rows = list((await s.execute(q)).scalars())
    next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


async def cancel_task(db: Database, client: Client, task_id: str, user_id: str) -> tuple[Task, bool]:
    """Cancels the task's run; returns the task and whether it already shows ``cancelled``."""
    task = await get_owned_task(db, task_id, user_id)
    if task.status == TaskStatus.CANCELLED.value:
        return task, True
    if task.status in TERMINAL_STATUSES:
        raise ServiceError(409, "task_not_cancellable", f"the task is already {task.status}")
    try:
        await client.get_workflow_handle(task_id).cancel()
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise ServiceError(503, "temporal_unavailable", f"cancel failed: {err.message}") from None
    task = await wait_for_status(db, task_id, user_id, TERMINAL_STATUSES, CANCEL_WAIT_SECONDS)
    if task.status in ("completed", "failed"):
        raise ServiceError(409, "task_not_cancellable",
                           f"the task finished ({task.status}) before it could be cancelled")
    return task, task.status == TaskStatus.CANCELLED.value
