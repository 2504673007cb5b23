"""OAuth discovery and self-registration for agent hosts (MCP clients):

- ``POST /oauth/register``: RFC 7591 dynamic client registration. Only public clients are
  registered (``token_endpoint_auth_method: none``; PKCE S256 is then required at
  ``/oauth/authorize``), with loopback-http or https redirect URIs, limited to
  ``CODETETHER_OAUTH_REGISTRATIONS_PER_HOUR`` per client address, and switched off with
  ``CODETETHER_OAUTH_DYNAMIC_REGISTRATION=false``. Errors are RFC 7591 JSON
  (``{"error": "invalid_redirect_uri" | "invalid_client_metadata", "error_description"}``).
- ``GET /.well-known/oauth-protected-resource`` (and ``…/mcp``): RFC 9728 protected resource
  metadata of the MCP endpoint, naming this service as its authorization server.

The client rows are the same ``oauth_clients`` as ``codetether oauth-clients create --public``
(``codetether/accounts/oauth_clients.py``); owner-less, since nobody is signed in when a host registers.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from limits import RateLimitItemPerHour

from codetether.accounts.credentials import OAUTH_SCOPES
from codetether.accounts.oauth_clients import OAuthClientError, create_oauth_client
from codetether.api.deps import State
from codetether.api.edge.public_base import public_base

router = APIRouter(tags=["oauth"])

# Scopes a self-registered client may ask for: what any OAuth client may hold (never account:manage).
REGISTRABLE_SCOPES = OAUTH_SCOPES
SUPPORTED_GRANTS = {"authorization_code", "refresh_token"}
MCP_PATH = "/mcp"


def _resource_metadata(request: Request, state) -> JSONResponse:
    public = public_base(request.scope, state.settings)
    return JSONResponse(resource_metadata(public.url), headers={"Cache-Control": public.cache_control})


def _error(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status,
                        headers={"Cache-Control": "no-store", **(headers or {})})


async def _rate_limited(request: Request, state) -> JSONResponse | None:
    limiter = state.extras.get("rate_limiter")
    if limiter is None:
        return None
    client = request.client.host if request.client else "unknown"
    outcome = await limiter.hit(RateLimitItemPerHour(state.settings.oauth_registrations_per_hour), "oauth_register", client)
    if outcome is None or outcome[0]:
        return None
    retry = max(1, int(outcome[1]["reset"] - time.time()))
    return _error(429, "too_many_requests", "too many client registrations from this address; retry later",
                  {"Retry-After": str(min(retry, 3600))})


@router.post("/oauth/register", include_in_schema=False)
async def register(request: Request, state: State) -> JSONResponse:
    if not state.settings.oauth_dynamic_registration:
        return _error(404, "registration_not_supported", "dynamic client registration is disabled on this server")
    limited = await _rate_limited(request, state)
    if limited is not None:
        return limited
    try:
        meta: Any = await request.json()
    except ValueError:
        return _error(400, "invalid_client_metadata", "the body must be a JSON object")
    if not isinstance(meta, dict):
        return _error(400, "invalid_client_metadata", "the body must be a JSON object")
    uris = meta.get("redirect_uris")
    if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
        return _error(400, "invalid_redirect_uri", "redirect_uris must be a non-empty list of URIs")
    method = meta.get("token_endpoint_auth_method") or "none"
    if method != "none":
        # Only public clients register themselves; a secret handed to an unknown host protects nothing.
        method = "none"
    grants = meta.get("grant_types") or ["authorization_code", "refresh_token"]
    if not isinstance(grants, list) or "authorization_code" not in grants or not set(grants) <= SUPPORTED_GRANTS:
        return _error(400, "invalid_client_metadata", "grant_types must be authorization_code (and refresh_token)")
    responses = meta.get("response_types") or ["code"]
    if responses != ["code"]:
        return _error(400, "invalid_client_metadata", "response_types must be [\"code\"]")
    scope = meta.get("scope")
    if scope is None:
        scopes = list(REGISTRABLE_SCOPES)
    elif isinstance(scope, str):
        scopes = [s for s in scope.split() if s]
        bad = [s for s in scopes if s not in REGISTRABLE_SCOPES]
        if bad or not scopes:
            return _error(400, "invalid_client_metadata", f"scope may hold only: {' '.join(REGISTRABLE_SCOPES)}")
    else:
        return _error(400, "invalid_client_metadata", "scope must be a space-separated string")
    name = meta.get("client_name") if isinstance(meta.get("client_name"), str) else None
    try:
        client = await create_oauth_client(
            state.db, name=(name or "MCP client").strip()[:200] or "MCP client", redirect_uris=uris, public=True,
            scopes=scopes, self_registered=True,
        )
    except OAuthClientError as err:
        code = "invalid_redirect_uri" if "redirect" in str(err).lower() else "invalid_client_metadata"
        return _error(400, code, str(err))
    body = {
        "client_id": client["client_id"],
        "client_id_issued_at": int(time.time()),
        "client_name": client["name"],
        "redirect_uris": client["redirect_uris"],
        "grant_types": sorted(set(grants)),
        "response_types": ["code"],
        "token_endpoint_auth_method": method,
        "scope": " ".join(client["scopes"]),
    }
    return JSONResponse(body, status_code=201, headers={"Cache-Control": "no-store"})


def resource_metadata(base: str) -> dict[str, Any]:
    return {
        "resource": f"{base}{MCP_PATH}",
        "authorization_servers": [base],
        "scopes_supported": list(REGISTRABLE_SCOPES),
        "bearer_methods_supported": ["header"],
        "resource_name": "CodeTether MCP server",
        "resource_documentation": f"{base}/docs",
    }


@router.get("/.well-known/oauth-protected-resource", include_in_schema=False)
async def protected_resource(request: Request, state: State) -> JSONResponse:
    return _resource_metadata(request, state)


@router.get("/.well-known/oauth-protected-resource/mcp", include_in_schema=False)
async def protected_resource_mcp(request: Request, state: State) -> JSONResponse:
    # RFC 9728 section 3.1: the metadata URL of a resource with a path inserts that path.
    return _resource_metadata(request, state)
