"""Second probe, M5 (data at rest): the data dir and the SQLite database (tasks, transcripts,
webhook secrets, push credentials) were created 0755/0644, readable by every local user.

The data dir is now created 0700 and an existing one is tightened at start; the database, its
-wal/-shm and the secret files are 0600 from their first byte.
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from codetether.cli.dev import ensure_reply_secret
from codetether.core.config import Settings
from codetether.core.datadir import secure_data_dir, write_private
from codetether.core.db import Database, migrate
from codetether.core.secretbox import ensure_key_file


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_a_new_data_dir_is_0700(tmp_path):
    path = secure_data_dir(tmp_path / "a" / "data")
    assert mode(path) == 0o700


def test_an_existing_data_dir_is_tightened_at_start(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    (data / "codetether.db").write_text("x")
    (data / "codetether.db").chmod(0o644)
    (data / "logs").mkdir(mode=0o755)
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours")
    outside.chmod(0o644)
    (data / "link").symlink_to(outside)
    secure_data_dir(data)
    assert mode(data) == 0o700
    assert mode(data / "codetether.db") == 0o600
    assert mode(data / "logs") == 0o700
    assert mode(outside) == 0o644  # a symlink's target is not the data dir's to change


def test_secret_files_are_0600(tmp_path):
    data = secure_data_dir(tmp_path / "data")
    ensure_key_file(data)
    ensure_reply_secret(data)
    for name in os.listdir(data):
        assert mode(data / name) == 0o600, name
    loose = data / "loose"
    loose.write_text("old")
    loose.chmod(0o644)
    write_private(loose, "new")
    assert mode(loose) == 0o600 and loose.read_text() == "new"


def test_the_sqlite_database_and_its_wal_are_0600(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", _env_file=None)
    migrate(settings.resolved_database_url)
    db = Database.from_settings(settings)

    async def write() -> None:
        from sqlalchemy import text

        async with db.write_connection() as conn:
            await conn.execute(text("CREATE TABLE IF NOT EXISTS probe (x INTEGER)"))
            await conn.execute(text("INSERT INTO probe VALUES (1)"))
        async with db.session() as s:
            await s.execute(text("SELECT 1"))

    try:
        asyncio.run(write())
        files = [p for p in settings.data_dir.iterdir() if p.name.startswith("codetether.db")]
        assert files
        for path in files:
            assert mode(path) == 0o600, path.name
        assert mode(settings.data_dir) == 0o700
    finally:
        asyncio.run(db.dispose())
