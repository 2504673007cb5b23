"""Fresh PostgreSQL databases for tests: created on the server at 127.0.0.1:5432 (user postgres,
trust auth, as on every CI machine of the project) and dropped afterwards.

``CODETETHER_TEST_PG_URL`` overrides the server (``postgresql://user@host:port``).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from contextlib import contextmanager

import asyncpg

SERVER = os.environ.get("CODETETHER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432")


def _admin_dsn() -> str:
    return f"{SERVER}/postgres"


async def _create(name: str) -> None:
    conn = await asyncpg.connect(_admin_dsn(), timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop(name: str) -> None:
    conn = await asyncpg.connect(_admin_dsn(), timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def create_database(prefix: str = "ct_test") -> tuple[str, str]:
    """Creates an empty database; returns (name, SQLAlchemy asyncpg URL)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    asyncio.run(_create(name))
    host = SERVER.split("://", 1)[1]
    return name, f"postgresql+asyncpg://{host}/{name}"


def drop_database(name: str) -> None:
    asyncio.run(_drop(name))


@contextmanager
def fresh_database(prefix: str = "ct_test"):
    name, url = create_database(prefix)
    try:
        yield url
    finally:
        drop_database(name)
