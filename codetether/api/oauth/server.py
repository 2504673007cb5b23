"""The OAuth 2.0 authorization server: authlib's framework-neutral grants adapted to Starlette.

authlib's grant and endpoint classes are synchronous and call model hooks (``query_client``,
``query_authorization_code``, ``save_token``...) in the middle of their checks, while this service
reaches its database asynchronously. The adaptation is a per-request unit of work
(``codetether/api/oauth/unit_of_work.py``): rows are loaded before authlib runs, the hooks record
what must change, and the changes are written afterwards with conditional updates. This module
assembles the server from the grants (``grants.py``) and token endpoints (``token_lookup.py``) and
records issued tokens.

Driven by ``/oauth/authorize`` (``codetether/api/oauth/authorize.py``) and ``/oauth/token``,
``/oauth/revoke``, ``/oauth/introspect`` (``codetether/api/oauth/tokens.py``). Access tokens
(``cta_``) and refresh tokens (``ctr_``) are opaque random strings stored as SHA-256 hashes;
``codetether/api/oauth/access_tokens.py`` turns an access token into the same
:class:`~codetether.api.auth.Principal` API keys produce.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6750 import BearerTokenGenerator

from codetether.accounts.credentials import OAUTH_SCOPES, hash_token
from codetether.api.oauth.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
    S256CodeChallenge,
)
from codetether.api.oauth.token_lookup import IntrospectionEndpointImpl, RevocationEndpointImpl
from codetether.api.oauth.unit_of_work import ctx
from codetether.api.oauth.views import (
    ACCESS_TOKEN_PREFIX,
    ACCESS_TOKEN_TTL,
    REFRESH_TOKEN_PREFIX,
    REFRESH_TOKEN_TTL,
    ClientView,
)
from codetether.core.ids import new_id, utcnow
from codetether.core.models import OAuthToken


def _new_token(prefix: str, grant_type: str | None, which: str) -> str:
    # A refresh rotates into the pair derived from the presented token (see OAuthContext.successor).
    derived = ctx().successor(which) if grant_type == "refresh_token" else None
    return prefix + (derived or secrets.token_urlsafe(32))


class CodeTetherAuthorizationServer(AuthorizationServer):
    def __init__(self) -> None:
        super().__init__(scopes_supported=list(OAUTH_SCOPES))
        self.register_token_generator(
            "default",
            BearerTokenGenerator(
                access_token_generator=lambda grant_type=None, **_: _new_token(ACCESS_TOKEN_PREFIX, grant_type, "access"),
                refresh_token_generator=lambda grant_type=None, **_: _new_token(REFRESH_TOKEN_PREFIX, grant_type,
                                                                                 "refresh"),
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
                successor_seed=secrets.token_urlsafe(32) if refresh else None,
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


# One server for every route: it holds only its registered grants and endpoints, no request state.
authorization_server = CodeTetherAuthorizationServer()
