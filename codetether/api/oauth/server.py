"""The OAuth 2.0 authorization server: authlib's framework-neutral grants adapted to Starlette.

authlib's grant and endpoint classes are synchronous and call model hooks (``query_client``,
``query_authorization_code``, ``save_token``...) in the middle of their checks, while this service
reaches its database asynchronously. The adaptation is a per-request unit of work
(:class:`OAuthContext`):

1. before authlib runs, the route loads everything the request can touch (the client, the code or
   refresh token presented, the users behind them) with async queries;
2. authlib runs inline (it does no I/O) and its hooks read the preloaded rows and *record* what
   must change (a code to mark used, a refresh token to rotate, tokens to insert, families to
   revoke);
3. the route applies the recorded changes in one transaction with conditional updates
   (``... WHERE used_at IS NULL``), so two concurrent redemptions of one code or one refresh token
   cannot both succeed: the loser sees a reuse and the whole token family is revoked.

Driven by ``codetether/api/oauth/routes.py`` (``/oauth/authorize``, ``/oauth/token``, ``/oauth/revoke``,
``/oauth/introspect``). Access tokens (``cta_``) and refresh tokens (``ctr_``) are opaque random
strings stored as SHA-256 hashes; :func:`resolve_access_token` turns an access token into the
same :class:`~codetether.api.auth.Principal` API keys produce, so every route's scope checks apply unchanged.
"""

from __future__ import annotations

import contextvars
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from authlib.oauth2 import AuthorizationServer, OAuth2Error
from authlib.oauth2.rfc6749 import (
    AuthorizationCodeMixin,
    ClientMixin,
    InvalidGrantError,
    InvalidRequestError,
    OAuth2Request,
    TokenMixin,
    grants,
)
from authlib.oauth2.rfc6749.requests import OAuth2Payload
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from sqlalchemy import select, update

from codetether.api.auth import Principal
from codetether.core.db import Database
from codetether.core.ids import as_utc, new_id, utcnow
from codetether.core.models import OAuthAuthorizationCode, OAuthClient, OAuthToken, User
from codetether.accounts.credentials import OAUTH_SCOPES, constant_time_equals, hash_token

ACCESS_TOKEN_PREFIX = "cta_"
REFRESH_TOKEN_PREFIX = "ctr_"
ACCESS_TOKEN_TTL = timedelta(hours=1)
REFRESH_TOKEN_TTL = timedelta(days=30)
# RFC 6749 §4.1.2 recommends at most ten minutes.
CODE_TTL = timedelta(minutes=10)

CONFIDENTIAL_AUTH_METHODS = ("client_secret_basic", "client_secret_post")


# --- read-only snapshots of the rows authlib's hooks see -------------------------------------


@dataclass
class UserView:
    id: str
    email: str
    tier: str

    @classmethod
    def of(cls, row: User) -> UserView:
        return cls(row.id, row.email, row.tier)

    def get_user_id(self) -> str:
        return self.id


@dataclass
class ClientView(ClientMixin):
    client_id: str
    name: str
    secret_hash: str | None
    owner_id: str | None
    redirect_uris: list[str]
    scopes: list[str]
    is_public: bool

    @classmethod
    def of(cls, row: OAuthClient) -> ClientView:
        return cls(
            row.client_id,
            row.name,
            row.client_secret_hash,
            row.owner_id,
            list(row.redirect_uris or []),
            list(row.scopes or []),
            bool(row.is_public),
        )

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        # The redirect URI must always be sent and match exactly (RFC 9700 §4.1.1).
        return None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        # First-party scopes (account:manage) are never granted to a client, whatever its row says.
        allowed = [s for s in self.scopes if s in OAUTH_SCOPES]
        if not scope:
            return " ".join(allowed)
        requested = scope_to_list(scope)
        if any(s not in allowed for s in requested):
            return None  # -> invalid_scope
        return " ".join(s for s in OAUTH_SCOPES if s in requested)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Exact string comparison, no prefix or pattern matching.
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        if self.is_public or not self.secret_hash:
            return False
        return constant_time_equals(hash_token(client_secret), self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.is_public:
            return method == "none"
        return method in CONFIDENTIAL_AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type in ("authorization_code", "refresh_token"):
            return True
        # client_credentials acts for the client's owner, so only an owned, confidential client.
        return grant_type == "client_credentials" and not self.is_public and self.owner_id is not None


@dataclass
class CodeView(AuthorizationCodeMixin):
    code_hash: str
    client_id: str
    user_id: str
    redirect_uri: str
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: datetime
    used_at: datetime | None
    family_id: str | None

    @classmethod
    def of(cls, row: OAuthAuthorizationCode) -> CodeView:
        return cls(
            row.code_hash, row.client_id, row.user_id, row.redirect_uri, row.scope, row.code_challenge,
            row.code_challenge_method, as_utc(row.expires_at), as_utc(row.used_at), row.family_id,
        )

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass
class TokenView(TokenMixin):
    id: str
    family_id: str
    client_id: str
    user_id: str
    scope: str
    issued_at: datetime
    expires_at: datetime
    refresh_expires_at: datetime | None
    rotated_at: datetime | None
    revoked_at: datetime | None
    # Which of the row's two tokens the caller presented: "access_token" or "refresh_token".
    kind: str = "access_token"

    @classmethod
    def of(cls, row: OAuthToken, kind: str) -> TokenView:
        return cls(
            row.id, row.family_id, row.client_id, row.user_id, row.scope, as_utc(row.issued_at),
            as_utc(row.expires_at), as_utc(row.refresh_expires_at), as_utc(row.rotated_at),
            as_utc(row.revoked_at), kind,
        )

    def check_client(self, client: ClientView) -> bool:
        return client.client_id == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return int((self.expires_at - self.issued_at).total_seconds())

    def is_expired(self) -> bool:
        now = utcnow()
        if self.kind == "refresh_token":
            return self.refresh_expires_at is None or self.refresh_expires_at <= now
        return self.expires_at <= now

    def is_revoked(self) -> bool:
        if self.revoked_at is not None:
            return True
        return self.kind == "refresh_token" and self.rotated_at is not None


# --- the per-request unit of work ------------------------------------------------------------


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

    def in_refresh_grace(self, rotated_at: datetime | None) -> bool:
        return rotated_at is not None and utcnow() - rotated_at <= self.refresh_grace


_ctx: contextvars.ContextVar[OAuthContext] = contextvars.ContextVar("oauth_context")


def ctx() -> OAuthContext:
    return _ctx.get()


class _Payload(OAuth2Payload):
    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list] = defaultdict(list)
        for key, value in items:
            self._datalist[key].append(value)
        self._data = {key: values[0] for key, values in self._datalist.items()}

    @property
    def data(self) -> dict:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list]:
        return self._datalist


class StarletteOAuth2Request(OAuth2Request):
    """An authlib request built from what a Starlette route already read (no I/O inside authlib)."""

    def __init__(self, method: str, headers: dict[str, str], query: list[tuple[str, str]],
                 form: list[tuple[str, str]]) -> None:
        # TLS is terminated in front of the service; authlib's own http:// check would refuse
        # every loopback and proxied deployment, so it is given a neutral https URI.
        super().__init__(method, "https://codetether.invalid/oauth", headers=headers)
        self._args = dict(query)
        self._form = dict(form)
        self.payload = _Payload(query + form)

    @property
    def args(self) -> dict:
        return self._args

    @property
    def form(self) -> dict:
        return self._form


# --- grants and endpoints --------------------------------------------------------------------


class S256CodeChallenge(CodeChallenge):
    """PKCE with S256 only: required for public clients, honoured for every client."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ("S256",)

    def validate_code_challenge(self, grant, redirect_uri) -> None:
        data = grant.request.payload.data
        challenge, method = data.get("code_challenge"), data.get("code_challenge_method")
        client: ClientView = grant.request.client
        if not challenge and not method:
            if client.is_public:
                raise InvalidRequestError("public clients must send a code_challenge with code_challenge_method=S256")
            return
        if challenge and not method:
            # RFC 7636 would default to "plain", which this server refuses.
            raise InvalidRequestError("code_challenge_method is required and must be S256")
        if method != "S256":
            raise InvalidRequestError("code_challenge_method must be S256 ('plain' is not accepted)")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant, result) -> None:
        request = grant.request
        if request.client.is_public and not request.authorization_code.code_challenge:
            raise InvalidGrantError("the code was issued without PKCE")
        super().validate_code_verifier(grant, result)


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        data = request.payload.data
        now = utcnow()
        ctx().new_code = OAuthAuthorizationCode(
            code_hash=hash_token(code),
            client_id=request.client.client_id,
            user_id=request.user.id,
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope or "",
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            created_at=now,
            expires_at=now + CODE_TTL,
        )

    def query_authorization_code(self, code: str, client: ClientView) -> CodeView | None:
        c = ctx()
        found = c.code
        if found is None or not constant_time_equals(found.code_hash, hash_token(code)):
            return None
        if found.client_id != client.client_id:
            return None
        if found.used_at is not None:
            # A second redemption: refuse and revoke what the first one issued (RFC 6749 §4.1.2).
            if found.family_id:
                c.revoke_families.add(found.family_id)
            return None
        if found.expires_at <= utcnow():
            return None
        return found

    def delete_authorization_code(self, authorization_code: CodeView) -> None:
        ctx().use_code = authorization_code

    def authenticate_user(self, authorization_code: CodeView) -> UserView | None:
        return ctx().users.get(authorization_code.user_id)


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: every refresh returns a new refresh token

    def authenticate_refresh_token(self, refresh_token: str) -> TokenView | None:
        c = ctx()
        found = c.token
        if found is None or found.kind != "refresh_token":
            return None
        if found.revoked_at is not None or found.is_expired():
            return None
        if found.rotated_at is not None:
            if c.in_refresh_grace(found.rotated_at):
                # Parallel clients refreshing at once: the loser gets a new pair of the same family.
                return found
            # A rotated refresh token came back later: someone holds a copy. Revoke the family.
            c.revoke_families.add(found.family_id)
            return None
        return found

    def authenticate_user(self, refresh_token: TokenView) -> UserView | None:
        return ctx().users.get(refresh_token.user_id)

    def revoke_old_credential(self, refresh_token: TokenView) -> None:
        ctx().rotate = refresh_token


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS


class _TokenLookup:
    CLIENT_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenView | None:
        found = ctx().token
        if found is None:
            return None
        return found


class RevocationEndpointImpl(_TokenLookup, RevocationEndpoint):
    def revoke_token(self, token: TokenView, request) -> None:
        # Revoking either token of a grant ends the grant (RFC 7009 §2.1 allows it; it is safer).
        ctx().revoke_families.add(token.family_id)


class IntrospectionEndpointImpl(_TokenLookup, IntrospectionEndpoint):
    # Introspection is for resource servers holding client credentials (RFC 7662 §2.1).
    CLIENT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def check_permission(self, token: TokenView, client: ClientView, request) -> bool:
        return token.client_id == client.client_id

    def introspect_token(self, token: TokenView) -> dict:
        user = ctx().users.get(token.user_id)
        exp = token.refresh_expires_at if token.kind == "refresh_token" else token.expires_at
        body = {
            "active": True,
            "client_id": token.client_id,
            "scope": token.scope,
            "sub": token.user_id,
            "username": user.email if user else None,
            "exp": int(exp.timestamp()) if exp else None,
            "iat": int(token.issued_at.timestamp()),
        }
        if token.kind == "access_token":
            body["token_type"] = "Bearer"  # RFC 7662 §2.2: the RFC 6749 §5.1 token type
        return body


class CodeTetherAuthorizationServer(AuthorizationServer):
    def __init__(self) -> None:
        super().__init__(scopes_supported=list(OAUTH_SCOPES))
        self.register_token_generator(
            "default",
            BearerTokenGenerator(
                access_token_generator=lambda **_: ACCESS_TOKEN_PREFIX + secrets.token_urlsafe(32),
                refresh_token_generator=lambda **_: REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32),
                expires_generator=int(ACCESS_TOKEN_TTL.total_seconds()),
            ),
        )
        self.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True)])
        self.register_grant(RefreshTokenGrant)
        self.register_grant(ClientCredentialsGrant)
        self.register_endpoint(RevocationEndpointImpl)
        self.register_endpoint(IntrospectionEndpointImpl)

    def query_client(self, client_id: str) -> ClientView | None:
        return ctx().clients.get(client_id)

    def save_token(self, token: dict, request: OAuth2Request) -> None:
        c = ctx()
        client: ClientView = request.client
        if request.refresh_token is not None:  # refresh grant: same family as the rotated token
            family_id, user_id = request.refresh_token.family_id, request.refresh_token.user_id
        elif request.user is not None:
            family_id, user_id = new_id("fam"), request.user.id
        else:  # client_credentials acts for the client's owner
            family_id, user_id = new_id("fam"), client.owner_id
        now = utcnow()
        refresh = token.get("refresh_token")
        c.new_tokens.append(
            OAuthToken(
                id=new_id("tok"),
                family_id=family_id,
                client_id=client.client_id,
                user_id=user_id,
                access_token_hash=hash_token(token["access_token"]),
                refresh_token_hash=hash_token(refresh) if refresh else None,
                scope=token.get("scope") or "",
                issued_at=now,
                expires_at=now + timedelta(seconds=int(token.get("expires_in") or ACCESS_TOKEN_TTL.total_seconds())),
                refresh_expires_at=now + REFRESH_TOKEN_TTL if refresh else None,
            )
        )

    def create_oauth2_request(self, request) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        raise TypeError("pass a StarletteOAuth2Request")

    def create_json_request(self, request):
        raise NotImplementedError("no JSON endpoints are registered")

    def handle_response(self, status: int, body, headers):
        return status, body, list(headers or [])

    def send_signal(self, name: str, *args, **kwargs) -> None:
        return None


# --- loading and applying --------------------------------------------------------------------


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


async def apply_changes(db: Database, c: OAuthContext) -> None:
    """Writes what the hooks recorded, atomically; raises :class:`ReuseDetected` if a code or
    refresh token was consumed by someone else in the meantime (then nothing is written except
    the revocation of the family involved)."""
    now = utcnow()
    family = c.new_tokens[0].family_id if c.new_tokens else None
    lost_family: str | None = None
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
                if res.rowcount != 1 and not await _rotated_within_grace(s, c):
                    lost_family = c.rotate.family_id
                    raise ReuseDetected()
            if c.new_code is not None:
                s.add(c.new_code)
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


async def run_endpoint(db: Database, c: OAuthContext, fn) -> tuple[int, object, list]:
    """Runs one synchronous authlib call against a loaded context, then persists its effects."""
    token = _ctx.set(c)
    try:
        status, body, headers = fn()
    finally:
        _ctx.reset(token)
    if 200 <= status < 400:
        try:
            await apply_changes(db, c)
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


# --- the resource side -----------------------------------------------------------------------


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
            scopes=[s for s in scope_to_list(tok.scope) or [] if s in OAUTH_SCOPES],
            auth_method="oauth",
            credential_id=tok.id,
            client_id=tok.client_id,
        )


__all__ = [
    "AccessTokenResolver",
    "CodeTetherAuthorizationServer",
    "OAuth2Error",
    "OAuthContext",
    "StarletteOAuth2Request",
    "load_context",
    "run_endpoint",
    "with_context",
]
