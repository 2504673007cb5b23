"""What authlib's hooks see: read-only snapshots of the OAuth rows (client, code, token, user),
with the client rules authlib asks about (scopes, redirect URIs, auth methods, grant types), and
the token formats and lifetimes.

Built by ``codetether/api/oauth/unit_of_work.py`` before authlib runs for ``/oauth/authorize``,
``/oauth/token``, ``/oauth/revoke`` and ``/oauth/introspect``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, TokenMixin
from authlib.oauth2.rfc6749.util import scope_to_list

from codetether.accounts.credentials import TOKEN_SCOPES, constant_time_equals, hash_token
from codetether.core.ids import as_utc, utcnow
from codetether.core.models import OAuthAuthorizationCode, OAuthClient, OAuthToken, User

ACCESS_TOKEN_PREFIX = "cta_"
REFRESH_TOKEN_PREFIX = "ctr_"
ACCESS_TOKEN_TTL = timedelta(hours=1)
REFRESH_TOKEN_TTL = timedelta(days=30)
# RFC 6749 §4.1.2 recommends at most ten minutes.
CODE_TTL = timedelta(minutes=10)

CONFIDENTIAL_AUTH_METHODS = ("client_secret_basic", "client_secret_post")

TOKEN_LIFETIMES = {
    "authorization_code": int(CODE_TTL.total_seconds()),
    "access_token": int(ACCESS_TOKEN_TTL.total_seconds()),
    "refresh_token": int(REFRESH_TOKEN_TTL.total_seconds()),
}


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
    self_registered: bool = False

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
            bool(row.self_registered),
        )

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        # The redirect URI must always be sent and match exactly (RFC 9700 §4.1.1).
        return None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        # First-party scopes (account:manage) are never granted to a client, whatever its row says;
        # partner:manage only to a partner's client (no other client can be registered with it).
        allowed = [s for s in self.scopes if s in TOKEN_SCOPES]
        if not scope:
            return " ".join(allowed)
        requested = scope_to_list(scope)
        if any(s not in allowed for s in requested):
            return None  # -> invalid_scope
        return " ".join(s for s in TOKEN_SCOPES if s in requested)

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
    successor_seed: str | None = None
    # Which of the row's two tokens the caller presented: "access_token" or "refresh_token".
    kind: str = "access_token"

    @classmethod
    def of(cls, row: OAuthToken, kind: str) -> TokenView:
        return cls(
            row.id, row.family_id, row.client_id, row.user_id, row.scope, as_utc(row.issued_at),
            as_utc(row.expires_at), as_utc(row.refresh_expires_at), as_utc(row.rotated_at),
            as_utc(row.revoked_at), row.successor_seed, kind,
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
