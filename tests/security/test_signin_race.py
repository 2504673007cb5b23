"""Sign-in lockout under concurrency: forty wrong passwords and the right one sent at once.

Every attempt is counted before its password is checked, so at most the limit of them are ever
verified; the rest are refused with 429 unseen, and the right password sent after them is refused
too. Runs on SQLite and, in the production pass, on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from codetether.accounts.service import create_user
from codetether.accounts.signin import authenticate_password
from codetether.core.config import Settings
from codetether.core.errors import ServiceError

PASSWORD = "correct horse battery staple"
LIMIT = 5


def guard_settings(tmp_path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path, database_url=database_url, signin_max_failures=LIMIT,
                    signin_ip_max_failures=1000, signin_failure_window_seconds=600, signin_lockout_seconds=600)


async def attempt(db, settings, email: str, password: str, ip: str) -> int:
    try:
        await authenticate_password(db, settings, email, password, ip)
    except ServiceError as err:
        return err.status
    return 200


@pytest.mark.postgres
async def test_concurrent_wrong_passwords_cannot_outrun_the_lockout(db, database_url, tmp_path):
    settings = guard_settings(tmp_path, database_url)
    email = f"race-{uuid.uuid4().hex[:10]}@example.com"
    await create_user(db, email, password=PASSWORD)
    ip = f"198.51.100.{uuid.uuid4().int % 250 + 1}"
    statuses = await asyncio.gather(*[attempt(db, settings, email, f"wrong-{i}", ip) for i in range(40)],
                                    attempt(db, settings, email, PASSWORD, ip))
    wrong, right = statuses[:40], statuses[40]
    # Only the limit's worth of passwords were checked at all; everything else was refused unseen.
    checked = [s for s in statuses if s in (200, 401)]
    assert len(checked) <= LIMIT, statuses
    assert set(wrong) <= {401, 429}
    assert wrong.count(429) >= 40 - LIMIT
    # Whatever the right one met, the account is locked now: the right password is refused.
    assert right in (200, 401, 429)
    assert await attempt(db, settings, email, PASSWORD, ip) == 429


@pytest.mark.postgres
async def test_a_success_gives_the_ip_its_attempt_back(db, database_url, tmp_path):
    settings = Settings(data_dir=tmp_path, database_url=database_url, signin_max_failures=5, signin_ip_max_failures=3)
    ip = f"203.0.113.{uuid.uuid4().int % 250 + 1}"
    emails = [f"ok-{uuid.uuid4().hex[:10]}@example.com" for _ in range(5)]
    for email in emails:
        await create_user(db, email, password=PASSWORD)
    # Five good sign-ins from one address never lock it (each gives its counted attempt back).
    for email in emails:
        assert await attempt(db, settings, email, PASSWORD, ip) == 200
    # Three wrong ones do.
    for email in emails[:3]:
        assert await attempt(db, settings, email, "wrong password", ip) in (401, 429)
    assert await attempt(db, settings, emails[4], PASSWORD, ip) == 429
