"""``GET /.well-known/oauth-authorization-server``: the authorization server metadata (RFC 8414)
OAuth clients discover the endpoints, scopes and methods from.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from codetether.accounts.credentials import OAUTH_SCOPES
from codetether.api.deps import State
from codetether.api.edge.public_base import public_base

router = APIRouter(tags=["oauth"])


@router.get("/.well-known/oauth-authorization-server", operation_id="oauthMetadata",
            summary="Authorization server metadata (RFC 8414)")
async def metadata(request: Request, state: State) -> JSONResponse:
    public = public_base(request.scope, state.settings)
    base = public.url
    body = {
        "issuer": base,
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "introspection_endpoint": f"{base}/oauth/introspect",
        "scopes_supported": list(OAUTH_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials",
                                  "urn:ietf:params:oauth:grant-type:token-exchange"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "service_documentation": f"{base}/docs",
    }
    if state.settings.oauth_dynamic_registration:
        body["registration_endpoint"] = f"{base}/oauth/register"  # RFC 7591, codetether/api/oauth/registration.py
    return JSONResponse(body, headers={"Cache-Control": public.cache_control})
