"""The grants this authorization server accepts: authorization code with PKCE (S256 only),
refresh token with rotation (and reuse detection), and client credentials.

authlib runs them for ``/oauth/authorize`` and ``/oauth/token``; their hooks read the rows loaded
by ``codetether/api/oauth/unit_of_work.py`` and record what must be written.
"""

from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, OAuth2Request, grants
from authlib.oauth2.rfc7636 import CodeChallenge

from codetether.accounts.credentials import constant_time_equals, hash_token
from codetether.api.oauth.unit_of_work import ctx
from codetether.api.oauth.views import CODE_TTL, CONFIDENTIAL_AUTH_METHODS, ClientView, CodeView, TokenView, UserView
from codetether.core.ids import utcnow
from codetether.core.models import OAuthAuthorizationCode


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
