"""Writes task transitions: one transaction updates the task row and appends the event.

Called by the worker's ``record_events`` local activity (every workflow transition; the
transitions of one workflow step share one transaction) and by the agent activity for
``task.progress``. Events get a per-task monotonic ``seq``; recording is idempotent on
the event id so an activity retry never duplicates an event. After commit, the event is handed to
the configured :class:`EventSink` (webhook fan-out and notification email), except log-only
``task.message`` events. With a reply secret configured, a recorded question gets its signed
``reply_url`` (:mod:`codetether.replies.tokens`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from codetether.core import jsoncompact
from codetether.core.config import Settings
from codetether.core.db import Database
from codetether.core.ids import as_utc, new_id, parse_iso, utcnow
from codetether.core.models import Task, TaskEvent
from codetether.tasks import eventnotify
from codetether.tasks.view import dataclass_dict, event_payload, summarize
from codetether.replies.tokens import reply_url_for
from codetether.agent.transcript import run_conversation
from codetether.tasks.contracts import MESSAGE_EVENT, TaskChanges

# Events that stay in the task's log and never reach webhooks or email.
LOG_ONLY_EVENTS = frozenset({MESSAGE_EVENT})

log = logging.getLogger(__name__)


class TaskRowMissing(Exception):
    """The task row is not (yet) in the database; the recording activity retries."""


class EventSink(Protocol):
    async def publish(self, event: TaskEvent, task: Task) -> None: ...


class NullSink:
    async def publish(self, event: TaskEvent, task: Task) -> None:
        return None


class CompositeSink:
    """Publishes to several sinks in turn (webhooks, email). Each sink is idempotent per event, so
    when one raises and the recording activity retries, the ones before it do no harm."""

    def __init__(self, *sinks: EventSink) -> None:
        self.sinks = sinks

    async def publish(self, event: TaskEvent, task: Task) -> None:
        for sink in self.sinks:
            await sink.publish(event, task)


def apply_changes(task: Task, changes: TaskChanges, settings: Settings | None = None) -> None:
    if changes.status is not None:
        task.status = changes.status
    if changes.started_at is not None:
        task.started_at = parse_iso(changes.started_at)
        task.completed_at = None
    if changes.completed_at is not None:
        task.completed_at = parse_iso(changes.completed_at)
    if changes.clear_error:
        task.error_code = None
        task.error_message = None
    if changes.result is not None:
        task.result = changes.result
        task.result_summary = summarize(changes.result)
        task.result_json = changes.result_json
    if changes.error_code is not None:
        task.error_code = changes.error_code
        task.error_message = changes.error_message
    if changes.retry_count is not None:
        task.retry_count = changes.retry_count
    if changes.clear_required_action:
        task.required_action = None
    if changes.required_action is not None:
        action = dataclass_dict(changes.required_action)
        action["reply_url"] = (
            reply_url_for(settings, task.id, action, task.input_timeout_seconds) if settings is not None else None
        )
        task.required_action = action
    if changes.progress is not None:
        task.progress = changes.progress
    elif changes.completed_at is not None:
        task.progress = None
    if changes.conversation is not None:
        task.conversation = [dataclass_dict(m) for m in changes.conversation]
    for name in ("changes", "git", "usage", "artifacts"):
        value = getattr(changes, name)
        if value is not None:
            setattr(task, name, value)


@dataclass
class NewEvent:
    """One transition to record: the row's changes and, unless ``event_type`` is None, an event."""

    event_id: str
    event_type: str | None
    changes: TaskChanges
    occurred_at: str | None = None
    details: dict | None = None


class EventRecorder:
    def __init__(self, db: Database, sink: EventSink | None = None, settings: Settings | None = None) -> None:
        self.db = db
        self.sink: EventSink = sink or NullSink()
        self.settings = settings

    async def record(
        self,
        *,
        task_id: str,
        run_id: str,
        event_id: str,
        event_type: str | None,
        changes: TaskChanges,
        occurred_at: str | None = None,
        details: dict | None = None,
    ) -> TaskEvent | None:
        """Applies ``changes`` and appends ``event_type`` (if any). Returns the event, or None."""
        events = await self.record_many(task_id, run_id, [NewEvent(event_id, event_type, changes, occurred_at, details)])
        return events[0]

    async def record_progress(self, task_id: str, run_id: str, progress: dict) -> TaskEvent | None:
        """A ``task.progress`` event under a fresh id. No retry ever repeats one (a retried step
        reports under a new id), so there is no earlier copy to look for."""
        item = NewEvent(new_id("evt"), "task.progress", TaskChanges(progress=progress))
        return (await self.record_many(task_id, run_id, [item], fresh_ids=True))[0]

    async def record_many(
        self, task_id: str, run_id: str, items: list[NewEvent], *, fresh_ids: bool = False
    ) -> list[TaskEvent | None]:
        """Records several transitions of one task, in order, in one transaction (so a retry finds
        all of them or none). Returns each item's event, or None for a row-only change or a stale
        run's event. ``fresh_ids``: the ids were just made, so no earlier attempt wrote them."""
        for _ in range(5):
            try:
                return await self._record_once(task_id, run_id, items, fresh_ids)
            except IntegrityError:
                # Two writers took the same seq; the loser re-reads and tries again.
                log.debug("seq conflict on %s, retrying", task_id)
        raise RuntimeError(f"could not append event to {task_id}")

    async def _record_once(self, task_id: str, run_id: str, items: list[NewEvent], fresh_ids: bool) -> list[TaskEvent | None]:
        ids = [i.event_id for i in items if i.event_type is not None]
        existing: dict[str, TaskEvent] = {}
        if ids and not fresh_ids:
            async with self.db.session() as s:
                rows = await s.execute(select(TaskEvent).where(TaskEvent.id.in_(ids)))
                existing = {e.id: e for e in rows.scalars()}
        if ids and len(existing) == len(ids):
            # A retried activity: everything is there already. Publishing again is harmless
            # because deliveries are keyed by event id and destination.
            async with self.db.session() as s:
                replay_task = await s.get(Task, task_id)
            out: list[TaskEvent | None] = []
            for item in items:
                event = existing.get(item.event_id) if item.event_type is not None else None
                if event is not None and replay_task is not None and event.type not in LOG_ONLY_EVENTS:
                    await self.sink.publish(event, replay_task)
                out.append(event)
            return out
        results: list[TaskEvent | None] = []
        async with self.db.write_session() as s:
            task = await s.get(Task, task_id, with_for_update=not self.db.is_sqlite)
            if task is None:
                # The API inserts the row while the workflow starts; until it commits, wait.
                raise TaskRowMissing(f"task {task_id} has no row yet")
            first_seq = task.last_seq
            seq = first_seq
            for item in items:
                if item.event_type is not None and item.event_id in existing:
                    results.append(existing[item.event_id])
                    continue
                if run_id != task.run_id and item.event_type not in (None, "task.progress"):
                    # A stale run (superseded by a follow-up) must not overwrite the new run's state.
                    log.info("event %s of old run %s ignored", item.event_type, run_id)
                    results.append(None)
                    continue
                apply_changes(task, item.changes, self.settings)
                if item.changes.conversation_from_run:
                    task.conversation = await run_conversation(s, run_id)
                now = utcnow()
                task.updated_at = now
                if item.event_type is None:
                    results.append(None)
                    continue
                created = parse_iso(item.occurred_at) if item.occurred_at else now
                seq += 1
                payload = event_payload(task, item.event_id, item.event_type, as_utc(created) or now)
                if item.details and item.event_type == MESSAGE_EVENT:
                    payload["message"] = item.details
                event = TaskEvent(
                    id=item.event_id,
                    task_id=task_id,
                    user_id=task.user_id,
                    seq=seq,
                    type=item.event_type,
                    run_id=run_id,
                    created_at=created,
                    body=jsoncompact.dumps(payload),
                )
                s.add(event)
                results.append(event)
            if seq != first_seq:
                # The task's changes and its new seq in one guarded UPDATE, so a concurrent writer
                # with the same seq loses cleanly (marked as saved first: the flush before the
                # UPDATE then writes only the events).
                values = _changed_columns(task)
                values["last_seq"] = seq
                for key, value in values.items():
                    set_committed_value(task, key, value)
                res = await s.execute(
                    update(Task).where(Task.id == task_id, Task.last_seq == first_seq).values(**values)
                )
                if res.rowcount != 1:
                    await s.rollback()
                    raise IntegrityError("seq moved", None, Exception("seq moved"))
                if not self.db.is_sqlite:
                    # Delivered at commit to every API process that follows this task.
                    await s.execute(eventnotify.NOTIFY, {"payload": eventnotify.payload(task_id, seq)})
            await s.commit()
        if seq != first_seq:
            eventnotify.local_bus.publish(task_id, seq)
        for event in results:
            if event is not None and event.id not in existing and event.type not in LOG_ONLY_EVENTS:
                try:
                    await self.sink.publish(event, task)
                except Exception:  # noqa: BLE001 - the activity retries; the event itself is stored
                    log.exception("publishing %s failed", event.id)
                    raise
        return results


def _changed_columns(row: Task) -> dict:
    """The columns of ``row`` changed in this session and not yet written."""
    state = sa_inspect(row)
    return {attr.key: getattr(row, attr.key) for attr in state.mapper.column_attrs
            if state.attrs[attr.key].history.has_changes()}


async def list_events(db: Database, task_id: str, after: int = 0, limit: int = 1000) -> list[TaskEvent]:
    async with db.session() as s:
        rows = await s.execute(
            select(TaskEvent)
            .where(TaskEvent.task_id == task_id, TaskEvent.seq > after)
            .order_by(TaskEvent.seq)
            .limit(limit)
        )
        return list(rows.scalars())
