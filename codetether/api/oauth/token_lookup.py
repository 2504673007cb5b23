"""The endpoints that look up a presented token: revocation (RFC 7009) and introspection (RFC 7662).

authlib runs them for ``/oauth/revoke`` and ``/oauth/introspect`` (``codetether/api/oauth/tokens.py``);
the token was loaded beforehand by ``codetether/api/oauth/unit_of_work.py``.
"""

from __future__ import annotations

from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from codetether.api.oauth.unit_of_work import ctx
from codetether.api.oauth.views import CONFIDENTIAL_AUTH_METHODS, ClientView, TokenView


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
