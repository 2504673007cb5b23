"""Embed sessions (CONTRACT §14 Embed): the short-lived client secrets of ``<codetether-tasks>``.

A partner's backend asks ``POST /v1/partner/embed_sessions`` for one of its end users and puts
the answer's ``client_secret`` on the element in its page. The secret is a bearer credential of
that end user only, with the task scopes, for at most :data:`SESSION_TTL`; it is stored as a
SHA-256 hash. Its shape is ``ctes_<session id>.<random>``: the session id (``emb_...``) is not
secret, and the frame page's URL carries it so the page knows, before anything else, which
partner's origins may frame it (``codetether/api/embed/routes.py``).

``max_cost_usd``, when the partner gives one, becomes the cap of every task created with the
secret (a smaller cap asked by the page is kept).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from codetether.accounts.credentials import hash_token
from codetether.core.db import Database
from codetether.core.errors import ServiceError
from codetether.core.ids import as_utc, new_id, utcnow
from codetether.core.models import Partner, PartnerEmbedSession, PartnerEndUser, User
from codetether.partners.end_users import partners_end_user
from codetether.partners.registry import END_USER_SCOPES

SECRET_PREFIX = "ctes_"
SESSION_TTL = timedelta(minutes=15)
SESSION_ID_PREFIX = "emb"
# Rows are kept this long past their expiry (the frame of an expired session still renders, so
# the page can renew it), then removed when new sessions are made.
KEEP_EXPIRED = timedelta(days=1)


@dataclass
class EmbedIdentity:
    """Who an embed secret acts for."""

    session_id: str
    partner_id: str
    end_user_id: str
    user: User
    max_cost_usd: float | None
    expires_at: datetime
    scopes: tuple[str, ...] = END_USER_SCOPES


def session_id_of(secret: str) -> str | None:
    """The (public) session id inside a client secret, or None if it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        return None
    sid, dot, rest = secret[len(SECRET_PREFIX):].partition(".")
    if not dot or not rest or not sid.startswith(SESSION_ID_PREFIX + "_") or len(sid) > 40:
        return None
    return sid


async def create_session(db: Database, partner: Partner, end_user_id: str, *,
                         max_cost_usd: float | None = None, ttl: timedelta = SESSION_TTL) -> dict:
    """A new embed session for the partner's end user: ``{client_secret, expires_at, ...}``.
    Another partner's end user is ``404 end_user_not_found``."""
    ttl = min(ttl, SESSION_TTL)
    if max_cost_usd is not None and not max_cost_usd > 0:
        raise ServiceError(422, "validation_error", "max_cost_usd must be above 0")
    now = utcnow()
    async with db.write_session() as s:
        eu = await partners_end_user(s, partner.id, end_user_id)
        session_id = new_id(SESSION_ID_PREFIX)
        secret = f"{SECRET_PREFIX}{session_id}.{secrets.token_urlsafe(32)}"
        row = PartnerEmbedSession(id=session_id, partner_id=partner.id, end_user_id=eu.id,
                                  secret_hash=hash_token(secret), max_cost_usd=max_cost_usd,
                                  created_at=now, expires_at=now + ttl)
        s.add(row)
        await s.execute(delete(PartnerEmbedSession).where(PartnerEmbedSession.expires_at < now - KEEP_EXPIRED))
        await s.commit()
    return {"client_secret": secret, "expires_at": row.expires_at, "session_id": session_id,
            "end_user_id": eu.id, "max_cost_usd": max_cost_usd}


async def resolve_secret(db: Database, secret: str) -> EmbedIdentity | None:
    """The end user a client secret acts for, or None if it is unknown or expired."""
    if session_id_of(secret) is None:
        return None
    async with db.session() as s:
        row = (await s.execute(
            select(PartnerEmbedSession, User)
            .join(PartnerEndUser, PartnerEndUser.id == PartnerEmbedSession.end_user_id)
            .join(User, User.id == PartnerEndUser.user_id)
            .where(PartnerEmbedSession.secret_hash == hash_token(secret))
        )).first()
    if row is None:
        return None
    session, user = row
    expires = as_utc(session.expires_at)
    if expires <= utcnow():
        return None
    return EmbedIdentity(session_id=session.id, partner_id=session.partner_id, end_user_id=session.end_user_id,
                         user=user, max_cost_usd=session.max_cost_usd, expires_at=expires)


async def origins_for_session(db: Database, session_id: str) -> list[str] | None:
    """The registered origins of the partner behind a session (expired or not), or None if there
    is no such session: who may frame that session's page."""
    async with db.session() as s:
        origins = (await s.execute(
            select(Partner.origins)
            .join(PartnerEmbedSession, PartnerEmbedSession.partner_id == Partner.id)
            .where(PartnerEmbedSession.id == session_id)
        )).scalar_one_or_none()
    return list(origins) if origins is not None else None


async def partner_of_session(db: Database, session_id: str) -> str | None:
    async with db.session() as s:
        return (await s.execute(select(PartnerEmbedSession.partner_id)
                                .where(PartnerEmbedSession.id == session_id))).scalar_one_or_none()


def capped_cost(cap: float | None, requested: float | None) -> float | None:
    """The ``max_cost_usd`` of a task created under a session cap: the cap, or the caller's own
    smaller one."""
    if cap is None:
        return requested
    return cap if requested is None else min(cap, requested)
