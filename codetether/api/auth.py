"""Who is calling: bearer credentials resolved to a :class:`Principal`.

``ct_`` API keys are looked up by hash. Other bearer tokens go to the resolvers registered on the
:class:`Authenticator` (OAuth access tokens, external OIDC JWTs), in order.

A partner's client acts for one of its end users by adding ``CodeTether-End-User: eu_...`` to a
request made with its own access token (CONTRACT §14): the principal is then the end user's
account, with the partner token's task scopes. Resolved here, so every face (REST, A2A, MCP)
gets it; an end user that is not this partner's is ``404 end_user_not_found``, the header with any
other credential ``403``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import bindparam, select

from codetether.api.edge.errors import Problem
from codetether.accounts.service import TIER_CONCURRENCY, TIER_RATE_LIMITS, TIERS  # noqa: F401 - re-exported
from codetether.core.db import Database
from codetether.core.ids import as_utc, utcnow
from codetether.core.models import ApiKey, User
from codetether.accounts.credentials import API_KEY_PREFIX, PARTNER_SCOPES, hash_token
from codetether.partners.embed import capped_cost
from codetether.partners.end_users import acting_identity

# last_used_at is written at most this often per key, to keep reads cheap.
LAST_USED_RESOLUTION = timedelta(seconds=60)

# First-party credentials: held by the user directly, never delegated to a third-party app.
# "api_key": a ct_ key (it needs the account:manage scope to manage credentials).
# "console": a signed-in console session; the console face builds its Principal with this
# auth_method, and such a session satisfies the account:manage check by itself (the user typed
# their password into our own page). OAuth access tokens ("oauth") and external OIDC JWTs
# ("oidc") are third-party: they can never manage credentials, whatever their scopes say.
FIRST_PARTY_AUTH_METHODS = frozenset({"api_key", "console"})
ACCOUNT_MANAGE = "account:manage"
END_USER_HEADER = "CodeTether-End-User"


@dataclass
class Principal:
    user_id: str
    email: str
    tier: str
    scopes: list[str]
    auth_method: str  # "api_key" | "oauth" | "oidc" | "console"
    credential_id: str | None = None
    client_id: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def rate_limit(self) -> int | None:
        return TIER_RATE_LIMITS.get(self.tier, 60)

    @property
    def concurrency_limit(self) -> int | None:
        return TIER_CONCURRENCY.get(self.tier, 5)

    def has_scopes(self, *needed: str) -> bool:
        return all(s in self.scopes for s in needed)

    def capped_cost(self, requested: float | None) -> float | None:
        """The ``max_cost_usd`` a task created by this caller gets: an embed session's cap
        (``codetether/partners/embed.py``) bounds what the caller asked for."""
        return capped_cost(self.extra.get("max_cost_usd"), requested)

    @property
    def first_party(self) -> bool:
        return self.auth_method in FIRST_PARTY_AUTH_METHODS

    @property
    def can_manage_account(self) -> bool:
        """May create, list and revoke API keys and OAuth clients (``/v1/api-keys``, ``/v1/oauth/clients``)."""
        if self.auth_method == "console":
            return True
        return self.first_party and ACCOUNT_MANAGE in self.scopes


Resolver = Callable[[str], Awaitable["Principal | None"]]


def unauthenticated(detail: str = "send a valid API key or access token as 'Authorization: Bearer <token>'",
                    error: str | None = "invalid_token") -> Problem:
    # RFC 6750 section 3.1: a request without any credentials gets the challenge without an error code.
    challenge = 'Bearer realm="codetether"' + (f', error="{error}"' if error else "")
    return Problem(401, "unauthenticated", detail, headers={"WWW-Authenticate": challenge})


# Built once: a statement constructed per request costs more CPU (coercion, cache-key generation)
# than running it. Both take their values as bound parameters.
_KEY_LOOKUP = (
    select(ApiKey.id, ApiKey.scopes, ApiKey.revoked_at, ApiKey.last_used_at, User.id, User.email, User.tier)
    .join(User, User.id == ApiKey.user_id)
    .where(ApiKey.key_hash == bindparam("key_hash"))
)
_KEY_TABLE = ApiKey.__table__
_TOUCH_KEY = _KEY_TABLE.update().where(_KEY_TABLE.c.id == bindparam("key_id")).values(last_used_at=bindparam("now"))


class Authenticator:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.resolvers: list[Resolver] = []

    def add_resolver(self, resolver: Resolver) -> None:
        self.resolvers.append(resolver)

    async def authenticate(self, token: str, end_user: str | None = None) -> Principal:
        """The caller behind ``token``; with ``end_user`` (the ``CodeTether-End-User`` header) the
        partner's end user it acts for."""
        principal = await self._resolve(token)
        if end_user is None:
            return principal
        return await self._acting_for(principal, end_user.strip())

    async def _resolve(self, token: str) -> Principal:
        if token.startswith(API_KEY_PREFIX):
            principal = await self._api_key(token)
            if principal is None:
                raise unauthenticated("the API key is not valid or has been revoked")
            return principal
        for resolver in self.resolvers:
            principal = await resolver(token)
            if principal is not None:
                return principal
        raise unauthenticated("the access token is not valid, expired or revoked")

    async def _acting_for(self, partner: Principal, end_user_id: str) -> Principal:
        if partner.auth_method != "oauth" or not partner.client_id or not partner.has_scopes(*PARTNER_SCOPES):
            raise Problem(403, "end_user_header_not_allowed",
                          f"only a partner's client credentials token with partner:manage may send {END_USER_HEADER}")
        found = await acting_identity(self.db, partner.client_id, end_user_id) if end_user_id else None
        if found is None:
            raise Problem(404, "end_user_not_found", f"no end user {end_user_id!r}")
        eu, user = found
        return Principal(
            user_id=user.id,
            email=user.email,
            tier=user.tier,
            scopes=[s for s in partner.scopes if s not in PARTNER_SCOPES],
            auth_method="oauth",
            credential_id=partner.credential_id,
            client_id=partner.client_id,
            extra={**partner.extra, "end_user_id": eu.id, "partner_id": eu.partner_id, "partner_user_id": partner.user_id},
        )

    async def _api_key(self, token: str) -> Principal | None:
        # Plain columns over one connection, no ORM objects: this runs on every request. No cache
        # in front of it: a revoked key must stop working at once, on every API process.
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(_KEY_LOOKUP, {"key_hash": hash_token(token)})).first()
        if row is None:
            return None
        key_id, scopes, revoked_at, last_used_at, user_id, email, tier = row
        if revoked_at is not None:
            return None
        now = utcnow()
        last = as_utc(last_used_at)
        if last is None or now - last > LAST_USED_RESOLUTION:
            async with self.db.write_connection() as conn:
                await conn.execute(_TOUCH_KEY, {"key_id": key_id, "now": now})
        return Principal(
            user_id=user_id,
            email=email,
            tier=tier,
            scopes=list(scopes or []),
            auth_method="api_key",
            credential_id=key_id,
        )
