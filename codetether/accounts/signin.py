"""Password sign-in with per-account and per-IP throttling and lockout.

The one authority on "may this email and password sign in", used by the console sign-in
(``codetether/api/console/auth.py``) and the OAuth sign-in page (``codetether/api/oauth/authorize.py``). Failures are
counted in ``signin_failures`` under ``account:<email>`` and ``ip:<address>``; once either
reaches its limit (``CODETETHER_SIGNIN_MAX_FAILURES`` / ``..._IP_MAX_FAILURES`` within
``..._FAILURE_WINDOW_SECONDS``) it is locked for ``CODETETHER_SIGNIN_LOCKOUT_SECONDS``, and while
locked even the right password is refused without being checked. A success clears the account's
count. Being in the database, the counts hold across API processes and restarts.

Each attempt is counted, under a row lock, *before* its password is checked, so concurrent
attempts cannot all slip in under the limit while the first ones are still being verified.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from codetether.core.config import Settings
from codetether.core.db import Database
from codetether.core.errors import ServiceError
from codetether.core.ids import as_utc, utcnow
from codetether.core.models import SignInFailure, User
from codetether.accounts.credentials import hash_password, verify_password

log = logging.getLogger(__name__)

INVALID_CREDENTIALS = "invalid_credentials"
SIGNIN_LOCKED = "signin_locked"


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # Checked when the email is unknown, so a wrong email costs as long as a wrong password.
    return hash_password(secrets.token_urlsafe(16))


def _keys(email: str, ip: str | None) -> list[tuple[str, str]]:
    keys = [("account", f"account:{email}")]
    if ip:
        keys.append(("ip", f"ip:{ip}"))
    return keys


def locked_error(until: datetime) -> ServiceError:
    seconds = max(1, math.ceil((until - utcnow()).total_seconds()))
    minutes = max(1, math.ceil(seconds / 60))
    return ServiceError(
        429, SIGNIN_LOCKED,
        f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
        headers={"Retry-After": str(seconds)},
    )


class SignInGuard:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.limits = {"account": settings.signin_max_failures, "ip": settings.signin_ip_max_failures}
        self.window = timedelta(seconds=settings.signin_failure_window_seconds)
        self.lockout = timedelta(seconds=settings.signin_lockout_seconds)

    async def _update(self, email: str, ip: str | None, change) -> datetime | None:
        """Runs ``change(kind, row, now)`` on each counter row under a row lock, in one transaction,
        and returns the latest lock end it reports. The rows are always taken in the same order
        (account, then IP), so two attempts cannot deadlock on PostgreSQL."""
        for _ in range(5):
            locked: datetime | None = None
            now = utcnow()
            try:
                async with self.db.write_session() as s:
                    for kind, key in _keys(email, ip):
                        row = await s.get(SignInFailure, key, with_for_update=True)
                        if row is None:
                            row = SignInFailure(key=key, failures=0, first_failed_at=now)
                            s.add(row)
                            await s.flush()  # a concurrent first attempt makes this an IntegrityError
                        expired_lock = row.locked_until is not None and as_utc(row.locked_until) <= now
                        if expired_lock or as_utc(row.first_failed_at) + self.window < now:
                            row.failures, row.first_failed_at, row.locked_until = 0, now, None
                        until = change(kind, row, now)
                        if until is not None:
                            locked = max(locked or until, until)
                    await s.commit()
                return locked
            except IntegrityError:  # a concurrent attempt inserted the row first: read it again
                continue
        raise ServiceError(503, "signin_busy", "Too many sign-ins at once. Try again in a moment.")

    async def begin_attempt(self, email: str, ip: str | None) -> datetime | None:
        """Counts an attempt before its password is checked; returns the lock's end if it is refused.

        Counting first is what makes the limit hold under concurrency: of any number of attempts
        sent at once, at most the limit get their password checked, the rest are refused unseen.
        """
        def count(kind: str, row: SignInFailure, now: datetime) -> datetime | None:
            if row.locked_until is not None:
                return as_utc(row.locked_until)
            row.failures += 1
            if row.failures > self.limits[kind]:
                row.locked_until = now + self.lockout
                log.warning("sign-in locked for %s after %d attempts", kind, row.failures - 1)
                return row.locked_until
            return None

        return await self._update(email, ip, count)

    async def record_failure(self, email: str, ip: str | None) -> datetime | None:
        """A counted attempt failed; returns the lock's end if it used up the account's or IP's limit."""
        def settle(kind: str, row: SignInFailure, now: datetime) -> datetime | None:
            if row.locked_until is not None:
                return as_utc(row.locked_until)
            if row.failures >= self.limits[kind]:
                row.locked_until = now + self.lockout
                log.warning("sign-in locked for %s after %d failures", kind, row.failures)
                return row.locked_until
            return None

        return await self._update(email, ip, settle)

    async def record_success(self, email: str, ip: str | None) -> None:
        """A counted attempt succeeded: the account's count goes, the IP's gives the attempt back."""
        async with self.db.write_session() as s:
            await s.execute(delete(SignInFailure).where(SignInFailure.key == f"account:{email}"))
            if ip:
                await s.execute(
                    update(SignInFailure)
                    .where(SignInFailure.key == f"ip:{ip}", SignInFailure.failures > 0,
                           SignInFailure.locked_until.is_(None))
                    .values(failures=SignInFailure.failures - 1)
                )
            await s.commit()


async def authenticate_password(db: Database, settings: Settings, email: str, password: str,
                                ip: str | None) -> User:
    """The user for ``email``/``password``, or a :class:`ServiceError` (401 wrong, 429 locked)."""
    guard = SignInGuard(db, settings)
    email = (email or "").strip().lower()
    until = await guard.begin_attempt(email, ip)
    if until is not None:
        raise locked_error(until)
    async with db.session() as s:
        user = (await s.execute(select(User).where(User.email == email))).scalar_one_or_none()
    stored = user.password_hash if user is not None and user.password_hash else _dummy_hash()
    ok = await asyncio.to_thread(verify_password, stored, password or "")
    if user is None or not user.password_hash or not ok:
        until = await guard.record_failure(email, ip)
        if until is not None:
            raise locked_error(until)
        raise ServiceError(401, INVALID_CREDENTIALS, "The email or password is not correct.")
    await guard.record_success(email, ip)
    return user
