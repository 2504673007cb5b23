"""The task rules every face shares: create, get, wait, list, cancel.

REST (``codetether/api/rest/routes/tasks.py``), the console (``codetether/api/console/tasks.py``), A2A (``api/a2a/``)
and MCP (``api/mcp/``) call these, so a
task behaves the same whichever protocol created or reads it. Refusals are
:class:`codetether.core.errors.ServiceError`; each face turns them into its own error shape.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import Select, and_, func, or_, select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from codetether.agent.catalog import ModelCatalog, ModelSpec
from codetether.agent.prompts import PLAN_APPROVAL
from codetether.agent.structured import schema_problem
from codetether.budgets.service import check_can_spend
from codetether.agent.tools import READ_ONLY_TYPES
from codetether.core.config import Settings
from codetether.core.db import Database, load_owned, poll_until
from codetether.core.errors import ServiceError, not_found
from codetether.core.ids import as_utc, parse_iso
from codetether.core.jsonsafe import UnsafeJSON, check_json, find_bad_string
from codetether.core.models import Codebase, Task
from codetether.core.netguard import UnsafeURL, validate_webhook_url
from codetether.core.secretbox import SEALED_PREFIX, seal_text
from codetether.files.contracts import Attachment
from codetether.files.service import check_attachments
from codetether.tasks.launch import IdempotentKey, KeyedCreate, NewTask, StartFailed, create_task, create_task_keyed
from codetether.tasks.contracts import TASK_STATUSES, TERMINAL_STATUSES
from codetether.tasks.tags import check_tags, has_tag

WAIT_POLL_INTERVAL = 0.1
CANCEL_WAIT_SECONDS = 10.0
STATUSES = TASK_STATUSES

# The input rules of a new task and of a message; REST's schemas (``api/rest/schemas/``) state the
# same numbers so its 422s keep their field-by-field shape.
TITLE_LIMIT = 200
DESCRIPTION_LIMIT = 100_000
MESSAGE_LIMIT = 100_000
METADATA_LIMIT = 16 * 1024
MAX_COST_LIMIT = 100_000


async def load_task(db: Database, task_id: str, user_id: str) -> Task:
    """The caller's task, or 404 whether it does not exist or belongs to someone else."""
    return await load_owned(db, Task, task_id, lambda t: t.user_id == user_id, not_found("task", task_id))


async def wait_for_status(db: Database, task_id: str, user_id: str, statuses: Iterable[str], timeout: float) -> Task:
    """Re-reads the caller's task until its status is in ``statuses`` or ``timeout`` passes."""
    wanted = frozenset(statuses)
    return await poll_until(lambda: load_task(db, task_id, user_id), lambda t: t.status in wanted, timeout,
                            WAIT_POLL_INTERVAL)


def resolve_model(catalog: ModelCatalog, name: str | None) -> ModelSpec:
    """The catalog entry for ``name``; 422 for an unknown model or one without credentials."""
    spec = catalog.resolve(name)
    if spec is None:
        raise ServiceError(
            422,
            "unknown_model",
            f"unknown model {name!r}; see GET /v1/automation/models",
            errors=[{"field": "model", "message": "unknown model", "type": "unknown_model"}],
        )
    if not spec.available:
        raise ServiceError(
            422,
            "model_unavailable",
            f"model {spec.name!r} has no configured provider credentials on this server",
            errors=[{"field": "model", "message": "provider not configured", "type": "model_unavailable"}],
        )
    return spec


async def check_codebase(db: Database, codebase_id: str, user_id: str) -> None:
    """422 unless ``codebase_id`` names one of the caller's codebases."""
    unknown = ServiceError(
        422,
        "unknown_codebase",
        f"no codebase {codebase_id!r}",
        errors=[{"field": "codebase_id", "message": "unknown codebase", "type": "unknown_codebase"}],
    )
    await load_owned(db, Codebase, codebase_id, lambda c: c.user_id == user_id, unknown)


def _invalid(field_name: str, code: str, message: str) -> ServiceError:
    return ServiceError(422, code, f"{field_name}: {message}",
                        errors=[{"field": field_name, "message": message, "type": code}])


def check_text(field_name: str, value: str | None, limit: int, *, required: bool = True) -> None:
    """422 unless ``value`` is storable text of at most ``limit`` characters (non-blank if required)."""
    if value is None or not value.strip():
        if required:
            raise _invalid(field_name, "validation_error", "must not be blank")
        return
    if len(value) > limit:
        raise _invalid(field_name, "validation_error", f"must be at most {limit} characters")
    if find_bad_string(value):
        raise _invalid(field_name, "json_invalid_string", "must not contain NUL or unpaired surrogate characters")


def check_metadata(metadata: object) -> None:
    """422 unless ``metadata`` is a JSON object every reader can store and read back, at most 16 KiB."""
    if not isinstance(metadata, dict):
        raise _invalid("metadata", "validation_error", "must be a JSON object")
    try:
        check_json(metadata, root="metadata")
    except UnsafeJSON as err:
        raise _invalid("metadata", err.code, f"{err.message} at {err.path}") from None
    if len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode()) > METADATA_LIMIT:
        raise _invalid("metadata", "validation_error", "must be at most 16 KiB of JSON")


def check_task_input(new: NewTask) -> None:
    """The input rules of a new task, the same on every face: title, description, metadata and
    the other caller-supplied strings. REST's schema refuses the same things earlier."""
    check_text("title", new.title, TITLE_LIMIT)
    check_text("description", new.description, DESCRIPTION_LIMIT)
    check_metadata(new.metadata)
    check_tags(new.tags)
    if new.max_cost_usd is not None and not (0 < new.max_cost_usd <= MAX_COST_LIMIT):
        raise _invalid("max_cost_usd", "validation_error", f"must be a number above 0 and at most {MAX_COST_LIMIT}")
    if new.output_schema is not None and (problem := schema_problem(new.output_schema)) is not None:
        raise _invalid("output_schema", "invalid_output_schema", problem)
    if new.require_approval is not None:
        if new.require_approval != PLAN_APPROVAL:
            raise _invalid("require_approval", "validation_error", f'must be "{PLAN_APPROVAL}" or null')
        if new.agent_type in READ_ONLY_TYPES:
            raise _invalid("require_approval", "validation_error",
                           f"a {new.agent_type} task changes nothing to approve; use build or general")
    for field_name in ("model", "codebase_id", "webhook_url", "callback_url", "webhook_secret", "notify_email"):
        value = getattr(new, field_name)
        if value is not None and find_bad_string(value):
            raise _invalid(field_name, "json_invalid_string", "must not contain NUL or unpaired surrogate characters")
    if new.webhook_secret is not None and new.webhook_secret.startswith(SEALED_PREFIX):
        raise _invalid("webhook_secret", "validation_error", f"must not start with {SEALED_PREFIX!r}")


def check_message(text: str) -> None:
    """The input rule of a message to an existing task (an answer, a next-turn message, a follow-up)."""
    check_text("message", text, MESSAGE_LIMIT)


async def check_new_task(db: Database, settings: Settings, new: NewTask) -> NewTask:
    """The checks a new task passes before it is stored: input rules, email, webhook URLs, codebase,
    attachments. Answers the task with its attachments resolved (files looked up, URLs checked)."""
    check_task_input(new)
    if new.notify_email and settings.smtp_url is None:
        # Accepting an address and never writing to it would be a silent no-op.
        raise ServiceError(
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
        url = getattr(new, field_name, None)
        if not url:
            continue
        try:
            await validate_webhook_url(url, allow_private=settings.webhook_allow_private)
        except UnsafeURL as err:
            raise ServiceError(
                422,
                "invalid_webhook_url",
                f"{field_name}: {err}",
                errors=[{"field": field_name, "message": str(err), "type": "invalid_webhook_url"}],
            ) from None
    if new.codebase_id:
        await check_codebase(db, new.codebase_id, new.owner_id)
    await check_can_spend(db, settings, new.owner_id)
    if new.attachments:
        specs = [a.stored() if isinstance(a, Attachment) else dict(a) for a in new.attachments]
        new = replace(new, attachments=await check_attachments(db, settings, new.owner_id, specs))
    return new


def _sealed(settings: Settings, new: NewTask) -> NewTask:
    # The task's own webhook secret is stored sealed, like subscriptions' (codetether/core/secretbox.py).
    if not new.webhook_secret:
        return new
    return replace(new, webhook_secret=seal_text(settings, new.webhook_secret))


async def start_task(db: Database, client: Client, settings: Settings, new: NewTask, *, task_id: str | None = None) -> Task:
    """Checks, stores and starts a new task; 503 if Temporal cannot take it.

    ``task_id`` is an id reserved by an idempotency key, so a retry reuses it.
    """
    new = await check_new_task(db, settings, new)
    try:
        return await create_task(db, client, settings, _sealed(settings, new), task_id=task_id)
    except StartFailed as err:
        raise ServiceError(503, "temporal_unavailable", f"the task could not be started: {err}") from None


async def start_task_keyed(db: Database, client: Client, settings: Settings, new: NewTask, key: IdempotentKey) -> KeyedCreate:
    """:func:`start_task` under an Idempotency-Key: the key's claim and the task row in one
    transaction (see :func:`codetether.tasks.launch.create_task_keyed`)."""
    new = await check_new_task(db, settings, new)
    try:
        return await create_task_keyed(db, client, settings, _sealed(settings, new), key)
    except StartFailed as err:
        raise ServiceError(503, "temporal_unavailable", f"the task could not be started: {err}") from None


@dataclass
class CancelOutcome:
    task: Task
    # False when the workflow has not confirmed the cancellation within the wait (REST answers 202).
    confirmed: bool


async def cancel_task(db: Database, client: Client, task_id: str, user_id: str) -> CancelOutcome:
    """Cancels a queued, running or waiting task; again on a cancelled one is fine; 409 once finished."""
    task = await load_task(db, task_id, user_id)
    if task.status == "cancelled":
        return CancelOutcome(task, True)
    if task.status in TERMINAL_STATUSES:
        raise ServiceError(409, "task_not_cancellable", f"the task is already {task.status}")
    try:
        await client.get_workflow_handle(task_id).cancel()
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise ServiceError(503, "temporal_unavailable", f"cancel failed: {err.message}") from None
    task = await wait_for_status(db, task_id, user_id, TERMINAL_STATUSES, CANCEL_WAIT_SECONDS)
    if task.status in ("completed", "failed"):
        raise ServiceError(409, "task_not_cancellable", f"the task finished ({task.status}) before it could be cancelled")
    return CancelOutcome(task, task.status == "cancelled")


@dataclass
class TaskFilter:
    statuses: list[str] | None = None
    agent_type: str | None = None
    model: str | None = None
    codebase_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    # Tasks having every one of these tags.
    tags: list[str] | None = None
    # Tasks whose status changed at or after this time (A2A's statusTimestampAfter).
    updated_since: datetime | None = None


def parse_statuses(value: str | Iterable[str] | None) -> list[str] | None:
    """A comma list (or list) of statuses, 422 for an unknown one."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    wanted = [s.strip() for s in items if s and s.strip()]
    bad = [s for s in wanted if s not in STATUSES]
    if bad:
        raise ServiceError(
            422,
            "validation_error",
            f"unknown status {bad[0]!r}",
            errors=[{"field": "status", "message": f"must be among {sorted(STATUSES)}", "type": "enum"}],
        )
    return wanted or None


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
        raise ServiceError(
            422,
            "validation_error",
            f"{name} must be an RFC 3339 date-time such as 2026-01-31T12:00:00Z",
            errors=[{"field": name, "message": "not an RFC 3339 date-time", "type": "datetime_parsing"}],
        ) from None


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


def filtered(db: Database, q: Select, user_id: str, filt: TaskFilter) -> Select:
    """``q`` narrowed to the caller's tasks that match ``filt`` (the list's, A2A's and bulk cancel's filter)."""
    q = q.where(Task.user_id == user_id)
    for tag in filt.tags or ():
        q = q.where(has_tag(tag, is_sqlite=db.is_sqlite))
    if filt.statuses:
        q = q.where(Task.status.in_(filt.statuses))
    if filt.agent_type:
        q = q.where(Task.agent_type == filt.agent_type)
    if filt.model:
        q = q.where(Task.model == filt.model)
    if filt.codebase_id:
        q = q.where(Task.codebase_id == filt.codebase_id)
    # Times are compared at the millisecond precision the API shows them with, so a task's own
    # created_at as the bound excludes that task in both directions.
    if filt.created_after is not None:
        q = q.where(Task.created_at >= _ms_floor(filt.created_after) + timedelta(milliseconds=1))
    if filt.created_before is not None:
        q = q.where(Task.created_at < _ms_floor(filt.created_before))
    if filt.updated_since is not None:
        q = q.where(Task.updated_at >= _ms_floor(filt.updated_since))
    return q


async def list_tasks(
    db: Database, user_id: str, filt: TaskFilter, *, limit: int = 20, cursor: str | None = None
) -> tuple[list[Task], str | None]:
    """The caller's tasks, newest first, and the cursor of the next page (or None)."""
    q = filtered(db, select(Task), user_id, filt)
    if cursor:
        c_time, c_id = decode_cursor(cursor)
        q = q.where(or_(Task.created_at < c_time, and_(Task.created_at == c_time, Task.id < c_id)))
    q = q.order_by(Task.created_at.desc(), Task.id.desc()).limit(limit + 1)
    async with db.session() as s:
        rows = list((await s.execute(q)).scalars())
    next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


async def count_tasks(db: Database, user_id: str, filt: TaskFilter) -> int:
    """How many of the caller's tasks match ``filt`` (all pages)."""
    async with db.session() as s:
        return (await s.execute(filtered(db, select(func.count()).select_from(Task), user_id, filt))).scalar_one()
