"""Console browser sessions and one-time links (sign-in links, sign-up email verification).

Driven by ``codetether/api/console/auth.py``; ``codetether dev`` calls :func:`create_signin_link` to print a
one-time sign-in link for the bootstrap user on each start. Only hashes of the tokens are stored;
the tokens themselves live in the cookie or the link.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta

from sqlalchemy import delete, select, update

from codetether.accounts.service import AccountError, create_user, get_user_by_email, normalise_email
from codetether.core.db import Database
from codetether.core.errors import ServiceError
from codetether.core.ids import as_utc, utcnow
from codetether.core.models import ConsoleSession, ConsoleToken, User
from codetether.accounts.credentials import hash_password, hash_token, verify_password

SIGNIN_LINK_TTL = timedelta(hours=24)
VERIFY_LINK_TTL = timedelta(hours=24)
PURPOSE_SIGNIN = "signin"
PURPOSE_VERIFY = "verify_email"
MIN_PASSWORD = 8


async def create_session(db: Database, user_id: str, *, hours: float, ip: str | None = None) -> str:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    async with db.write_session() as s:
        # Housekeeping rides on sign-ins: expired sessions and used or expired links go.
        await s.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
        await s.execute(delete(ConsoleToken).where(ConsoleToken.expires_at < now - timedelta(days=1)))
        s.add(ConsoleSession(token_hash=hash_token(token), user_id=user_id, created_at=now,
                             expires_at=now + timedelta(hours=hours), ip=ip))
        await s.commit()
    return token


async def session_user(db: Database, token: str | None) -> User | None:
    if not token:
        return None
    async with db.session() as s:
        row = (await s.execute(
            select(ConsoleSession, User).join(User, User.id == ConsoleSession.user_id)
            .where(ConsoleSession.token_hash == hash_token(token))
        )).first()
    if row is None or as_utc(row[0].expires_at) <= utcnow():
        return None
    return row[1]


async def end_session(db: Database, token: str | None) -> None:
    if not token:
        return
    async with db.write_session() as s:
        await s.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == hash_token(token)))
        await s.commit()


async def _new_token(db: Database, **values) -> str:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    async with db.write_session() as s:
        s.add(ConsoleToken(token_hash=hash_token(token), created_at=now, **values))
        await s.commit()
    return token


async def _redeem(db: Database, token: str, purpose: str) -> ConsoleToken | None:
    """Marks the link used; exactly one redemption wins, and an expired link redeems nothing."""
    now = utcnow()
    digest = hash_token(token)
    async with db.write_session() as s:
        res = await s.execute(
            update(ConsoleToken)
            .where(ConsoleToken.token_hash == digest, ConsoleToken.purpose == purpose,
                   ConsoleToken.used_at.is_(None), ConsoleToken.expires_at > now)
            .values(used_at=now)
        )
        await s.commit()
        if res.rowcount != 1:
            return None
        return await s.get(ConsoleToken, digest)


async def create_signin_link(db: Database, user_id: str, ttl: timedelta = SIGNIN_LINK_TTL) -> str:
    return await _new_token(db, purpose=PURPOSE_SIGNIN, user_id=user_id, expires_at=utcnow() + ttl)


async def redeem_signin_link(db: Database, token: str) -> User | None:
    row = await _redeem(db, token, PURPOSE_SIGNIN)
    if row is None or row.user_id is None:
        return None
    async with db.session() as s:
        return await s.get(User, row.user_id)


def check_new_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise ServiceError(422, "weak_password", f"The password needs at least {MIN_PASSWORD} characters.",
                           field="password")


async def start_signup(db: Database, email: str, password: str) -> str:
    """An emailed verification link for an open sign-up; the user exists once it is followed."""
    email = normalise_email(email)
    check_new_password(password)
    # An existing account gets no hint here: the link simply cannot create it a second time.
    return await _new_token(db, purpose=PURPOSE_VERIFY, email=email, password_hash=hash_password(password),
                            expires_at=utcnow() + VERIFY_LINK_TTL)


async def complete_signup(db: Database, token: str, password: str) -> User | None:
    """Follows a verification link; the password given at sign-up must be entered again.

    The link proves the address, the password proves the person following it is the one who signed
    up: without it, someone could sign up with another person's address and a password of their
    own, and the owner, following that (genuine-looking) link, would create an account the other
    person can sign in to. A wrong password leaves the link unspent.
    """
    async with db.session() as s:
        pending = await s.get(ConsoleToken, hash_token(token))
    if (pending is None or pending.purpose != PURPOSE_VERIFY or pending.used_at is not None
            or as_utc(pending.expires_at) <= utcnow() or not pending.email or not pending.password_hash):
        return None
    if not await asyncio.to_thread(verify_password, pending.password_hash, password or ""):
        raise ServiceError(422, "signup_password_mismatch",
                           "This is not the password this sign-up was made with. If you did not sign up with it, "
                           "someone else used your address: ignore that email and sign up again.", field="password")
    row = await _redeem(db, token, PURPOSE_VERIFY)
    if row is None:
        return None
    if await get_user_by_email(db, row.email) is not None:
        return None
    try:
        user = await create_user(db, row.email)
    except AccountError:  # created by a concurrent confirmation
        return None
    async with db.write_session() as s:
        await s.execute(update(User).where(User.id == user.id).values(password_hash=row.password_hash))
        # Any other pending sign-up for this address is void now.
        await s.execute(update(ConsoleToken)
                        .where(ConsoleToken.purpose == PURPOSE_VERIFY, ConsoleToken.email == row.email,
                               ConsoleToken.used_at.is_(None))
                        .values(used_at=utcnow()))
        await s.commit()
    async with db.session() as s:
        return await s.get(User, user.id)


async def signup_now(db: Database, email: str, password: str) -> User:
    """An open sign-up without SMTP: the account is made at once (nothing to verify it with)."""
    email = normalise_email(email)
    check_new_password(password)
    try:
        return await create_user(db, email, password=password)
    except AccountError as err:
        raise ServiceError(422, "signup_refused", str(err), field="email") from None
