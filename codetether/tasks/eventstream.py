"""Following a task's event log live: the reader behind the SSE stream of
``GET /v1/automation/tasks/{task_id}/events`` (``codetether/api/rest/routes/events.py``).

Events are written by the worker (possibly another process). One :class:`TaskSeqWatcher` per API
process learns that a followed task moved on from PostgreSQL's ``NOTIFY`` or, in the writer's
own process, from the local bus (``eventnotify.py``), and wakes the streams of that task; each
stream then reads only its new events. It also polls ``tasks.last_seq`` of every followed task in
one query per tick: every 50 ms when nothing notifies it (SQLite across processes, a lost LISTEN
connection), every second as a safety net when notices arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from sqlalchemy import select

from codetether.core.db import Database
from codetether.core.errors import ServiceError
from codetether.tasks import eventnotify
from codetether.tasks.events import list_events
from codetether.core.models import Task, TaskEvent
from codetether.tasks.contracts import TERMINAL_EVENTS, TERMINAL_STATUSES

log = logging.getLogger(__name__)

# 50 ms keeps event → client latency well under the 200 ms target at ~20 small queries a second.
POLL_INTERVAL = 0.05
# With notices arriving, polling only covers a notice lost with a dropped connection.
NOTIFIED_POLL_INTERVAL = 1.0
# The largest seq a client may name (REST's ``after`` and ``Last-Event-ID`` share it).
MAX_SEQ = 2**31 - 1
_SEQ = re.compile(r"^(0|[1-9][0-9]{0,9})$")
PAGE = 500
_IN_CHUNK = 500


def parse_seq(name: str, raw: str | None) -> int:
    """The event seq a client resumes after (0 when absent); 422 ``invalid_seq`` for anything but
    a plain integer from 0 to :data:`MAX_SEQ` (Python would spend its int-parsing limit on 5000
    digits, and the database could not compare a larger one)."""
    if raw is None or not raw.strip():
        return 0
    value = raw.strip()
    if not _SEQ.match(value) or int(value) > MAX_SEQ:
        raise ServiceError(422, "invalid_seq", f"{name} must be an event seq, an integer from 0 to {MAX_SEQ}",
                           field=name)
    return int(value)


@dataclass
class _Watched:
    last_seq: int
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    listeners: int = 0


class TaskSeqWatcher:
    def __init__(self, db: Database, interval: float = POLL_INTERVAL, *, listen: bool = True) -> None:
        self.db = db
        self.interval = interval
        self._tasks: dict[str, _Watched] = {}
        self._poller: asyncio.Task | None = None
        self._unsubscribe = eventnotify.local_bus.subscribe(self.advance)
        self.listener = (eventnotify.PgListener(db.url, self.advance)
                         if listen and not db.is_sqlite else None)

    def advance(self, task_id: str, last_seq: int) -> None:
        """Wakes the streams of ``task_id`` if its log now reaches ``last_seq``."""
        entry = self._tasks.get(task_id)
        if entry is not None and last_seq > entry.last_seq:
            entry.last_seq = last_seq
            entry.changed.set()
            entry.changed = asyncio.Event()

    async def close(self) -> None:
        self._unsubscribe()
        if self.listener is not None:
            await self.listener.stop()
        if self._poller is not None:
            self._poller.cancel()

    @contextlib.asynccontextmanager
    async def watch(self, task_id: str, known_seq: int) -> AsyncIterator["_Subscription"]:
        entry = self._tasks.get(task_id)
        if entry is None:
            entry = self._tasks[task_id] = _Watched(last_seq=known_seq)
        entry.listeners += 1
        if self.listener is not None:
            self.listener.start()
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll(), name="codetether-event-watcher")
        try:
            yield _Subscription(self, task_id)
        finally:
            entry.listeners -= 1
            if entry.listeners <= 0:
                self._tasks.pop(task_id, None)

    async def _poll(self) -> None:
        # Runs while someone listens; the next subscriber starts it again.
        while self._tasks:
            try:
                await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a database hiccup must not end every stream
                log.exception("polling task sequence numbers failed")
            notified = self.listener is not None and self.listener.connected
            await asyncio.sleep(max(self.interval, NOTIFIED_POLL_INTERVAL) if notified else self.interval)

    async def _tick(self) -> None:
        ids = list(self._tasks)
        async with self.db.session() as s:
            for i in range(0, len(ids), _IN_CHUNK):
                rows = await s.execute(select(Task.id, Task.last_seq).where(Task.id.in_(ids[i : i + _IN_CHUNK])))
                for task_id, last_seq in rows:
                    self.advance(task_id, last_seq)

    def last_seq(self, task_id: str) -> int:
        entry = self._tasks.get(task_id)
        return entry.last_seq if entry is not None else 0


class _Subscription:
    def __init__(self, watcher: TaskSeqWatcher, task_id: str) -> None:
        self._watcher = watcher
        self._task_id = task_id

    async def wait_beyond(self, seq: int, timeout: float) -> bool:
        """Waits until the task's log has an event after ``seq``; False on timeout."""
        entry = self._watcher._tasks.get(self._task_id)
        if entry is None:
            return False
        if entry.last_seq > seq:
            return True
        try:
            await asyncio.wait_for(entry.changed.wait(), timeout)
        except TimeoutError:
            return False
        return True


async def follow_events(
    db: Database, watcher: TaskSeqWatcher, task_id: str, after: int, *, idle_timeout: float = 15.0
) -> AsyncIterator[TaskEvent]:
    """Yields the task's events after ``after`` in order, then live ones, and stops after the
    terminal event of the task's current run (a later follow-up run is picked up by a new stream).
    """
    last, last_type = after, None
    async with watcher.watch(task_id, known_seq=after) as sub:
        while True:
            events = await list_events(db, task_id, after=last, limit=PAGE)
            for event in events:
                yield event
                last, last_type = event.seq, event.type
            if len(events) == PAGE:
                continue
            if last_type in TERMINAL_EVENTS and await _run_is_over(db, task_id, last):
                return
            await sub.wait_beyond(last, idle_timeout)


async def _run_is_over(db: Database, task_id: str, last_seq: int) -> bool:
    async with db.session() as s:
        row = (await s.execute(select(Task.status, Task.last_seq).where(Task.id == task_id))).first()
    if row is None:
        return True
    status, seq = row
    # A follow-up run may already be queued (status no longer terminal) or have written events.
    return status in TERMINAL_STATUSES and seq <= last_seq
