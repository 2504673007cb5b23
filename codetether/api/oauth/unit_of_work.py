"""The per-request unit of work that lets authlib's synchronous hooks work on an async database.

1. before authlib runs, :func:`load_context` loads everything the request can touch (the client,
   the code or refresh token presented, the users behind them) with async queries;
2. authlib runs inline (:func:`run_endpoint`, :func:`with_context`; it does no I/O) and its hooks
   (``codetether/api/oauth/grants.py``, ``token_lookup.py``, ``server.py``) read the preloaded rows
   from :func:`ctx` and *record* what must change (a code to mark used, a refresh token to rotate,
   tokens to insert, families to revoke);
3. :func:`apply_changes` writes the recorded changes in one transaction with conditional updates
   (``... WHERE used_at IS NULL``), so two concurrent redemptions of one code or one refresh token
   cannot both succeed: the loser sees a reuse and the whole token family is revoked.

Driven by the routes of ``/oauth/authorize`` (``codetether/api/oauth/authorize.py``) and
``/oauth/token``, ``/oauth/revoke``, ``/oauth/introspect`` (``codetether/api/oauth/tokens.py``).
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from authlib.oauth2.rfc6749 import InvalidGrantError
from sqlalchemy import select, update

from codetether.accounts.credentials import hash_token
from codetether.api.oauth.views import ClientView, CodeView, TokenView, UserView
from codetether.core.db import Database
from codetether.core.ids import as_utc, utcnow
from codetether.core.models import OAuthAuthorizationCode, OAuthClient, OAuthToken, User


@dataclass
class OAuthContext:
    """What one OAuth request may read (loaded before authlib runs) and must write (after)."""

    clients: dict[str, ClientView] = field(default_factory=dict)
    users: dict[str, UserView] = field(default_factory=dict)
    code: CodeView | None = None
    token: TokenView | None = None
    # Recorded by the hooks, applied by :func:`apply_changes`.
    new_code: OAuthAuthorizationCode | None = None
    use_code: CodeView | None = None
    rotate: TokenView | None = None
    new_tokens: list[OAuthToken] = field(default_factory=list)
    # Families revoked whatever the response (reuse detection, RFC 7009 revocation).
    revoke_families: set[str] = field(default_factory=set)
    # How long a just-rotated refresh token may still be redeemed (parallel refreshes).
    refresh_grace: timedelta = timedelta(0)
    # The refresh token presented, kept only for :meth:`successor` (never stored).
    presented_refresh_token: str | None = None

    def in_refresh_grace(self, rotated_at: datetime | None) -> bool:
        return rotated_at is not None and utcnow() - rotated_at <= self.refresh_grace

    def successor(self, which: str) -> str | None:
        """The access or refresh token the presented refresh token rotates into: the same for
        every redemption, so parallel refreshes inside the grace window share one pair instead of
        each opening a branch of the family. Derived from the presented token and its row's random
        seed; neither the database nor an old token alone is enough to compute it."""
        if self.token is None or self.token.kind != "refresh_token" or not self.token.successor_seed:
            return None
        if not self.presented_refresh_token:
            return None
        digest = hmac.new(self.presented_refresh_token.encode(), f"{which}|{self.token.successor_seed}".encode(),
                          hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


_ctx: contextvars.ContextVar[OAuthContext] = contextvars.ContextVar("oauth_context")


def ctx() -> OAuthContext:
    return _ctx.get()


async def load_context(
    db: Database,
    *,
    client_ids: list[str | None] = (),
    code: str | None = None,
    token: str | None = None,
    token_kinds: tuple[str, ...] = ("access_token", "refresh_token"),
    refresh_grace: timedelta = timedelta(0),
) -> OAuthContext:
    """Loads the rows one OAuth request may need: clients, a code or token, and their users."""
    c = OAuthContext(refresh_grace=refresh_grace)
    user_ids: set[str] = set()
    async with db.session() as s:
        for cid in {i for i in client_ids if i}:
            row = await s.get(OAuthClient, cid)
            if row is not None:
                c.clients[cid] = ClientView.of(row)
                if row.owner_id:
                    user_ids.add(row.owner_id)
        if code:
            row = await s.get(OAuthAuthorizationCode, hash_token(code))
            if row is not None:
                c.code = CodeView.of(row)
                user_ids.add(row.user_id)
        if token:
            h = hash_token(token)
            for kind in token_kinds:
                column = OAuthToken.access_token_hash if kind == "access_token" else OAuthToken.refresh_token_hash
                row = (await s.execute(select(OAuthToken).where(column == h))).scalar_one_or_none()
                if row is not None:
                    c.token = TokenView.of(row, kind)
                    if kind == "refresh_token":
                        c.presented_refresh_token = token
                    user_ids.add(row.user_id)
                    break
        for uid in user_ids:
            user = await s.get(User, uid)
            if user is not None:
                c.users[uid] = UserView.of(user)
    return c


class ReuseDetected(Exception):
    """A code or refresh token was redeemed concurrently by another request."""


async def revoke_families(db: Database, families: set[str]) -> None:
    if not families:
        return
    async with db.write_session() as s:
        await s.execute(
            update(OAuthToken)
            .where(OAuthToken.family_id.in_(families), OAuthToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        await s.commit()


async def _rotated_within_grace(s, c: OAuthContext) -> bool:
    """After a lost race to rotate a refresh token: was it rotated (not revoked) so recently that
    this request counts as a parallel refresh rather than a reuse?"""
    row = (
        await s.execute(select(OAuthToken.rotated_at, OAuthToken.revoked_at).where(OAuthToken.id == c.rotate.id))
    ).first()
    return row is not None and row.revoked_at is None and c.in_refresh_grace(as_utc(row.rotated_at))


async def _existing_successor(s, c: OAuthContext) -> OAuthToken | None:
    """The pair an earlier redemption of the same refresh token already stored, if the tokens
    recorded now are that same (derived) pair."""
    if len(c.new_tokens) != 1:
        return None
    row = (await s.execute(
        select(OAuthToken).where(OAuthToken.access_token_hash == c.new_tokens[0].access_token_hash)
    )).scalar_one_or_none()
    return row if row is not None and row.family_id == c.rotate.family_id else None


async def apply_changes(db: Database, c: OAuthContext) -> OAuthToken | None:
    """Writes what the hooks recorded, atomically; raises :class:`ReuseDetected` if a code or
    refresh token was consumed by someone else in the meantime (then nothing is written except
    the revocation of the family involved). Returns the already stored successor when this was a
    repeated refresh inside the grace window (nothing new is written then)."""
    now = utcnow()
    family = c.new_tokens[0].family_id if c.new_tokens else None
    lost_family: str | None = None
    repeated: OAuthToken | None = None
    async with db.write_session() as s:
        try:
            if c.use_code is not None:
                res = await s.execute(
                    update(OAuthAuthorizationCode)
                    .where(OAuthAuthorizationCode.code_hash == c.use_code.code_hash,
                           OAuthAuthorizationCode.used_at.is_(None))
                    .values(used_at=now, family_id=family)
                )
                if res.rowcount != 1:
                    raise ReuseDetected()
            if c.rotate is not None:
                res = await s.execute(
                    update(OAuthToken)
                    .where(OAuthToken.id == c.rotate.id, OAuthToken.rotated_at.is_(None),
                           OAuthToken.revoked_at.is_(None))
                    .values(rotated_at=now)
                )
                if res.rowcount != 1:
                    if not await _rotated_within_grace(s, c):
                        lost_family = c.rotate.family_id
                        raise ReuseDetected()
                    repeated = await _existing_successor(s, c)
            if c.new_code is not None:
                s.add(c.new_code)
            if repeated is None:
                for row in c.new_tokens:
                    s.add(row)
            await s.commit()
        except ReuseDetected:
            await s.rollback()
            if c.use_code is not None:
                winner = await s.get(OAuthAuthorizationCode, c.use_code.code_hash)
                lost_family = winner.family_id if winner is not None else None
            if lost_family:
                c.revoke_families.add(lost_family)
            raise
    await revoke_families(db, c.revoke_families)
    return repeated


async def run_endpoint(db: Database, c: OAuthContext, fn) -> tuple[int, object, list]:
    """Runs one synchronous authlib call against a loaded context, then persists its effects."""
    token = _ctx.set(c)
    try:
        status, body, headers = fn()
    finally:
        _ctx.reset(token)
    if 200 <= status < 400:
        try:
            repeated = await apply_changes(db, c)
            if repeated is not None and isinstance(body, dict):
                # The same pair as the first redemption, described as it was stored.
                left = int((as_utc(repeated.expires_at) - utcnow()).total_seconds())
                body = {**body, "scope": repeated.scope, "expires_in": max(left, 0)}
        except ReuseDetected:
            err = InvalidGrantError("the code or refresh token has already been used")
            await revoke_families(db, c.revoke_families)
            return err()
    else:
        await revoke_families(db, c.revoke_families)
    return status, body, headers


def with_context(c: OAuthContext, fn):
    """Runs a synchronous authlib call that only reads (consent validation) against ``c``."""
    token = _ctx.set(c)
    try:
        return fn()
    finally:
        _ctx.reset(token)
