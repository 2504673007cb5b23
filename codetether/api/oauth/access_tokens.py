"""The resource side of OAuth: a ``cta_`` access token presented as a bearer credential on any
route resolves to the same :class:`~codetether.api.auth.Principal` an API key produces, so every
route's scope checks apply unchanged.

Installed as an authenticator resolver by ``codetether/api/auth_extensions.py``.
"""

from __future__ import annotations

from authlib.oauth2.rfc6749.util import scope_to_list
from sqlalchemy import select

from codetether.accounts.credentials import TOKEN_SCOPES, hash_token
from codetether.api.auth import Principal
from codetether.api.oauth.views import ACCESS_TOKEN_PREFIX
from codetether.core.db import Database
from codetether.core.ids import as_utc, utcnow
from codetether.core.models import OAuthToken, User


class AccessTokenResolver:
    """Authenticator resolver for ``cta_`` access tokens: looked up at every request, so a revoked
    or expired token is refused at once."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def __call__(self, token: str) -> Principal | None:
        if not token.startswith(ACCESS_TOKEN_PREFIX):
            return None
        async with self.db.session() as s:
            row = (
                await s.execute(
                    select(OAuthToken, User)
                    .join(User, User.id == OAuthToken.user_id)
                    .where(OAuthToken.access_token_hash == hash_token(token))
                )
            ).first()
        if row is None:
            return None
        tok, user = row
        if tok.revoked_at is not None or as_utc(tok.expires_at) <= utcnow():
            return None
        return Principal(
            user_id=user.id,
            email=user.email,
            tier=user.tier,
            scopes=[s for s in scope_to_list(tok.scope) or [] if s in TOKEN_SCOPES],
            auth_method="oauth",
            credential_id=tok.id,
            client_id=tok.client_id,
        )
