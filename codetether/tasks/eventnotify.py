"""How a stream learns that a task's event log moved on, without polling for it.

The writer (``events.EventRecorder``, in the worker) announces ``(task_id, last_seq)`` after each
commit that added events: on PostgreSQL with ``NOTIFY`` in the writing transaction (delivered
when it commits, to every API process that listens), and always to this process's own
:data:`local_bus` (SQLite deployments run API and worker side by side in one process under
``codetether dev``'s tests and in embedded use). :class:`PgListener` keeps one ``LISTEN``
connection per API process and forwards what it hears to the same place the local bus does:
``eventstream.TaskSeqWatcher``, which still polls, slower, as a safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sqlalchemy import text

log = logging.getLogger(__name__)

CHANNEL = "codetether_task_events"
NOTIFY = text(f"SELECT pg_notify('{CHANNEL}', :payload)")
# Seconds between reconnection attempts of a lost LISTEN connection.
RECONNECT_DELAY = 1.0

Handler = Callable[[str, int], None]


def payload(task_id: str, seq: int) -> str:
    return f"{task_id} {seq}"


def parse(raw: str) -> tuple[str, int] | None:
    task_id, _, seq = raw.partition(" ")
    try:
        return task_id, int(seq)
    except ValueError:
        return None


class LocalBus:
    """In-process fan-out of ``(task_id, last_seq)`` to every watcher of this process."""

    def __init__(self) -> None:
        self._handlers: list[Handler] = []

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        self._handlers.append(handler)
        return lambda: self._handlers.remove(handler) if handler in self._handlers else None

    def publish(self, task_id: str, seq: int) -> None:
        for handler in list(self._handlers):
            try:
                handler(task_id, seq)
            except Exception:  # noqa: BLE001 - one broken watcher must not stop the writer
                log.exception("a task event watcher failed")


local_bus = LocalBus()


class PgListener:
    """One ``LISTEN`` connection (asyncpg, outside the pool) that calls ``handler`` per notice;
    ``connected`` says whether notices are arriving, so the watcher can poll less."""

    def __init__(self, database_url: str, handler: Handler) -> None:
        self.dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self.handler = handler
        self.connected = False
        self._task: asyncio.Task | None = None
        self._conn = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="codetether-event-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._close()

    def _notice(self, _conn, _pid, _channel, raw: str) -> None:
        parsed = parse(raw)
        if parsed is not None:
            self.handler(*parsed)

    async def _close(self) -> None:
        conn, self._conn, self.connected = self._conn, None, False
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    async def _run(self) -> None:
        import asyncpg

        while True:
            try:
                self._conn = await asyncpg.connect(self.dsn, timeout=10)
                await self._conn.add_listener(CHANNEL, self._notice)
                self.connected = True
                # Wait for the connection to drop (asyncpg reports it through is_closed).
                while not self._conn.is_closed():
                    await asyncio.sleep(1.0)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - reconnect; the watcher polls meanwhile
                log.warning("listening for task events failed (%s); polling until it is back", err)
            await self._close()
            await asyncio.sleep(RECONNECT_DELAY)
