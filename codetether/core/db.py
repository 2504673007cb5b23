"""Async database engine and sessions (SQLite by default, PostgreSQL by URL), migrations, and
the two row helpers every service uses: :func:`load_owned` ("the caller's row, or 404") and
:func:`poll_until` ("re-read the row until it changed")."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from codetether.core.config import Settings
from codetether.core.datadir import DIR_MODE, create_private, secure_data_dir
from codetether.core.errors import ServiceError


T = TypeVar("T")
M = TypeVar("M")


async def owned_row(s: AsyncSession, model: type[M], row_id: str, owns: Callable[[M], bool], missing: ServiceError) -> M:
    """The row ``row_id`` of ``model`` if ``owns(row)``; otherwise raises ``missing``.

    Someone else's row is refused exactly like one that does not exist, so ids cannot be probed.
    """
    row = await s.get(model, row_id)
    if row is None or not owns(row):
        raise missing
    return row


async def load_owned(db: "Database", model: type[M], row_id: str, owns: Callable[[M], bool], missing: ServiceError) -> M:
    """:func:`owned_row` in a session of its own (a read that ends here)."""
    async with db.session() as s:
        return await owned_row(s, model, row_id, owns, missing)



async def poll_until(
    read: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    timeout: float,
    interval: float,
    *,
    on_read: Callable[[T, float], Awaitable[None]] | None = None,
) -> T:
    """Calls ``read`` until ``done(value)`` or ``timeout`` seconds passed; returns the last value read.

    Other processes (the worker) change the rows, so waiting means re-reading; no sleep runs past
    the deadline. ``on_read(value, elapsed)`` sees every value read (MCP reports progress with it).
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + timeout
    while True:
        value = await read()
        now = loop.time()
        if on_read is not None:
            await on_read(value, now - start)
        if done(value) or now >= deadline:
            return value
        await asyncio.sleep(min(interval, max(0.0, deadline - now)))


class Database:
    """Owns one engine and its session factory; one per process."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict = {"echo": echo}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            _tune_sqlite(self.engine)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time and its busy handler sleeps up to 100 ms per retry, so
        # concurrent writers in one process queue here instead (no-op on PostgreSQL).
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @classmethod
    def from_settings(cls, settings: Settings) -> "Database":
        url = settings.resolved_database_url
        if url.startswith("sqlite"):
            secure_data_dir(settings.data_dir)
            prepare_sqlite_file(url)
        return cls(url)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as s:
            yield s

    @asynccontextmanager
    async def write_session(self) -> AsyncIterator[AsyncSession]:
        """A session for a short write transaction (serialised per process on SQLite)."""
        if self._write_lock is None:
            async with self.sessionmaker() as s:
                yield s
            return
        async with self._write_lock:
            async with self.sessionmaker() as s:
                yield s

    @asynccontextmanager
    async def write_connection(self) -> AsyncIterator[AsyncConnection]:
        """A bare connection in a transaction, committed on a clean exit, rolled back on an error
        (serialised per process on SQLite, like :meth:`write_session`).

        For hot-path writes of plain Core statements: no ORM session, unit of work or identity map.
        """
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock:
            async with self.engine.begin() as conn:
                yield conn

    async def dispose(self) -> None:
        await self.engine.dispose()


def _tune_sqlite(engine: AsyncEngine) -> None:
    # WAL lets the API read while the worker writes; busy_timeout turns lock contention into waits.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn, _record):  # pragma: no cover - exercised by every SQLite test
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()


MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def prepare_sqlite_file(url: str) -> None:
    """For a SQLite URL: its folder (0700 when created here) and the database file, 0600 before
    SQLite first opens it; SQLite gives its -wal and -shm files the database file's mode."""
    if not url.startswith("sqlite"):
        return
    path = url.split("///", 1)[-1].split("?", 1)[0]
    if path and path != ":memory:":
        db_file = Path(path)
        db_file.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        if db_file.exists():
            # Never open an existing database file here: closing any descriptor of it drops every
            # POSIX lock this process's SQLite connections hold on it (SQLite's documented caveat).
            if db_file.stat().st_mode & 0o077:
                os.chmod(db_file, 0o600)
        else:
            create_private(db_file)


def migrate(url: str, revision: str = "heads") -> None:
    """Brings the database at ``url`` to ``revision`` (synchronous; call before serving)."""
    from alembic import command

    prepare_sqlite_file(url)
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)
