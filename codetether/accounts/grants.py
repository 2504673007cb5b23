"""Connected apps: the OAuth grants a user gave (one per client), and revoking one.

A grant is every unrevoked token a client holds for the user through the authorization-code flow
(tokens of ``client_credentials`` act for a client's owner and are not a grant). Revoking a grant
revokes all of those tokens at once, refresh tokens included. Driven by the console's Connected
apps page (``api/console/pages.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update

from codetether.core.db import Database
from codetether.core.errors import not_found
from codetether.core.ids import as_utc, utcnow
from codetether.core.models import OAuthClient, OAuthToken


@dataclass
class Grant:
    client_id: str
    client_name: str
    scopes: list[str]
    granted_at: datetime
    last_issued_at: datetime
    # The client registered itself (RFC 7591): its name is its own claim.
    self_registered: bool = False


def _live(now: datetime):
    return (
        OAuthToken.revoked_at.is_(None),
        OAuthToken.refresh_token_hash.is_not(None),
        or_(OAuthToken.expires_at > now, OAuthToken.refresh_expires_at > now),
    )


async def list_grants(db: Database, user_id: str) -> list[Grant]:
    now = utcnow()
    async with db.session() as s:
        rows = (await s.execute(
            select(OAuthToken, OAuthClient.name, OAuthClient.self_registered).join(OAuthClient, OAuthClient.client_id == OAuthToken.client_id)
            .where(OAuthToken.user_id == user_id, *_live(now))
            .order_by(OAuthToken.issued_at)
        )).all()
    grants: dict[str, Grant] = {}
    for token, name, self_registered in rows:
        issued = as_utc(token.issued_at)
        g = grants.get(token.client_id)
        if g is None:
            g = grants[token.client_id] = Grant(token.client_id, name, [], issued, issued, bool(self_registered))
        for scope in (token.scope or "").split():
            if scope not in g.scopes:
                g.scopes.append(scope)
        g.last_issued_at = max(g.last_issued_at, issued)
    return sorted(grants.values(), key=lambda g: g.last_issued_at, reverse=True)


async def revoke_grant(db: Database, user_id: str, client_id: str) -> int:
    """Revokes every token of the grant; 404 when the user has no grant for that client."""
    now = utcnow()
    async with db.write_session() as s:
        res = await s.execute(
            update(OAuthToken)
            .where(OAuthToken.user_id == user_id, OAuthToken.client_id == client_id,
                   OAuthToken.refresh_token_hash.is_not(None), OAuthToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        await s.commit()
    if res.rowcount == 0:
        raise not_found("grant", client_id)
    return res.rowcount
