"""Alembic migrations: empty → heads → base → heads on SQLite and on PostgreSQL, and the models
in codetether/core/models/ agree with what the migrations build (autogenerate finds no difference)."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from codetether.core.db import alembic_config, downgrade, migrate
from codetether.core.models import Base
from tests.production.pg import fresh_database


def _inspect(url: str) -> tuple[set[str], list, set[str]]:
    """Tables, the autogenerate diff against the models, and the stamped revisions."""

    def work(conn):
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        tables = set(inspect(conn).get_table_names())
        return tables, compare_metadata(ctx, Base.metadata), set(ctx.get_current_heads())

    async def go():
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(work)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _round_trip(url: str) -> None:
    heads = set(ScriptDirectory.from_config(alembic_config(url)).get_heads())
    model_tables = set(Base.metadata.tables)

    migrate(url)
    tables, diff, stamped = _inspect(url)
    assert stamped == heads
    assert model_tables <= tables
    assert diff == [], f"models and migrations disagree: {diff}"

    downgrade(url, "base")
    tables, _diff, stamped = _inspect(url)
    assert stamped == set()
    assert not (tables & model_tables), f"left behind by downgrade: {tables & model_tables}"

    # And up again: downgrades leave nothing (types, indexes) that breaks a second upgrade.
    migrate(url)
    tables, diff, stamped = _inspect(url)
    assert stamped == heads and diff == []


def test_sqlite_upgrade_downgrade_and_models_agree(tmp_path):
    _round_trip(f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}")


def test_postgres_upgrade_downgrade_and_models_agree():
    with fresh_database("ct_migrations") as url:
        _round_trip(url)
