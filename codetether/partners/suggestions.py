"""The guesser's stored suggestions and their single-use prefilled URLs (CONTRACT §14).

``POST /v1/partner/guess`` (``codetether/api/rest/routes/partners.py``) stores each suggestion
with :func:`store_suggestion`: a ``sug_`` id, the partner (and the end user it acted for), the
``create_payload`` and the hash of a random 256-bit token that expires after an hour. The token
travels only in the prefilled URL ``{public_url}/embed/v1/frame?suggestion=<token>``; whoever
holds it once (the embed frame) gets the create body back from :func:`take_suggestion`, once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import delete, update

from codetether.accounts.credentials import hash_token
from codetether.core.db import Database
from codetether.core.ids import new_id, utcnow
from codetether.core.models import PartnerSuggestion

SUGGESTION_TTL = timedelta(hours=1)
TOKEN_PREFIX = "sgt_"
FRAME_PATH = "/embed/v1/frame"


@dataclass(frozen=True)
class StoredSuggestion:
    suggestion_id: str
    token: str
    expires_at: datetime


async def store_suggestion(
    db: Database,
    *,
    partner_id: str,
    create_payload: dict[str, Any],
    end_user_id: str | None = None,
    suggestion_id: str | None = None,
) -> StoredSuggestion:
    """Keeps ``create_payload`` behind a new single-use token; only the token's hash is stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    row = PartnerSuggestion(
        id=suggestion_id or new_id("sug"),
        partner_id=partner_id,
        end_user_id=end_user_id,
        create_payload=create_payload,
        token_hash=hash_token(token),
        created_at=now,
        expires_at=now + SUGGESTION_TTL,
    )
    async with db.write_session() as s:
        # Expired suggestions can never be taken: each new one clears them away.
        await s.execute(delete(PartnerSuggestion).where(PartnerSuggestion.expires_at < now))
        s.add(row)
        await s.commit()
    return StoredSuggestion(row.id, token, row.expires_at)


async def take_suggestion(db: Database, token: str, *, partner_id: str) -> dict[str, Any] | None:
    """The create body behind ``token`` the first time it is taken, None after that, once it has
    expired, or when it is another partner's. One conditional UPDATE marks it used and reads it,
    so two callers racing for the same token cannot both get it."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    now = utcnow()
    table = PartnerSuggestion.__table__
    stmt = (
        update(table)
        .where(table.c.token_hash == hash_token(token), table.c.partner_id == partner_id,
               table.c.used_at.is_(None), table.c.expires_at > now)
        .values(used_at=now)
        .returning(table.c.create_payload)
    )
    async with db.write_connection() as conn:
        row = (await conn.execute(stmt)).first()
    return dict(row[0]) if row is not None else None


def prefilled_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}{FRAME_PATH}?{urlencode({'suggestion': token})}"
