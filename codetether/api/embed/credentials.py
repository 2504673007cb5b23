"""The embed session secret (``ctes_...``) as a bearer credential: resolved per request to the
end user's :class:`~codetether.api.auth.Principal` with the task scopes only, so the frame page
of ``<codetether-tasks>`` calls the same task routes as any client and sees only that end user's
tasks. An expired or unknown secret resolves to nothing (401).

Installed as an authenticator resolver by ``codetether/api/auth_extensions.py``.
"""

from __future__ import annotations

from codetether.api.auth import Principal
from codetether.core.db import Database
from codetether.partners.embed import SECRET_PREFIX, resolve_secret

EMBED_AUTH_METHOD = "embed"


class EmbedSecretResolver:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def __call__(self, token: str) -> Principal | None:
        if not token.startswith(SECRET_PREFIX):
            return None
        found = await resolve_secret(self.db, token)
        if found is None:
            return None
        return Principal(
            user_id=found.user.id,
            email=found.user.email,
            tier=found.user.tier,
            scopes=list(found.scopes),
            auth_method=EMBED_AUTH_METHOD,
            credential_id=found.session_id,
            extra={"end_user_id": found.end_user_id, "partner_id": found.partner_id,
                   "embed_session_id": found.session_id, "embed_expires_at": found.expires_at,
                   "max_cost_usd": found.max_cost_usd},
        )
