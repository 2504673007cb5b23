"""OAuth discovery and self-registration for agent hosts (MCP clients):

- ``POST /oauth/register``: RFC 7591 dynamic client registration. Only public clients are
  registered (``token_endpoint_auth_method: none``; PKCE S256 is then required at
  ``/oauth/authorize``), with loopback-http or https redirect URIs, limited to
  ``CODETETHER_OAUTH_REGISTRATIONS_PER_HOUR`` per client address, and switched off with
  ``CODETETHER_OAUTH_DYNAMIC_REGISTRATION=false``. Errors are RFC 7591 JSON
  (``{"error": "invalid_redirect_uri" | "invalid_client_metadata", "error_description"}``; over the
  hourly limit ``429 temporarily_unavailable`` with ``Retry-After``, like the edge's rate limit).
- ``GET /.well-known/oauth-protected-resource`` (and ``…/mcp``): RFC 9728 protected resource
  metadata of the MCP endpoint, naming this service as its authorization server.

The client rows are the same ``oauth_clients`` as ``codetether oauth-clients create --public``
(``codetether/accounts/oauth_clients.py``); owner-less, since nobody is signed in when a host registers.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from limits import RateLimitItemPerHour
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from codetether.accounts.credentials import OAUTH_SCOPES
from codetether.accounts.oauth_clients import OAuthClientError, create_oauth_client
from codetether.api.deps import State
from codetether.api.edge.errors import OAUTH_RATE_LIMITED, oauth_error_response
from codetether.api.edge.public_base import public_base

router = APIRouter(tags=["oauth"])

# Scopes a self-registered client may ask for: what any OAuth client may hold (never account:manage).
REGISTRABLE_SCOPES = OAUTH_SCOPES
SUPPORTED_GRANTS = {"authorization_code", "refresh_token"}
MCP_PATH = "/mcp"


class ClientRegistrationRequest(BaseModel):
    """RFC 7591 client metadata. Unknown members are ignored; only public clients are registered."""

    model_config = ConfigDict(extra="allow", title="ClientRegistrationRequest")

    redirect_uris: list[StrictStr] = Field(
        min_length=1, description="Loopback http (any port) or https redirect URIs.",
        examples=[["http://127.0.0.1:33418/callback"]],
    )
    client_name: StrictStr | None = Field(None, description="Shown as unverified on the sign-in and consent pages (at most 200 characters are kept).")
    token_endpoint_auth_method: StrictStr | None = Field(
        None, description="Always registered as `none` (a public client that proves itself with PKCE S256)."
    )
    grant_types: list[Literal["authorization_code", "refresh_token"]] | None = Field(
        None, min_length=1, description="Must include `authorization_code`; default both.",
        json_schema_extra={"contains": {"const": "authorization_code"}},
    )
    response_types: list[Literal["code"]] | None = Field(None, min_length=1, max_length=1, description="Only `[\"code\"]`.")
    scope: StrictStr | None = Field(
        None, description=f"Space-separated, from: {' '.join(OAUTH_SCOPES)}. Default all of them.",
        examples=["tasks:read tasks:write"],
    )


class ClientRegistrationResponse(BaseModel):
    """RFC 7591 section 3.2.1 client information response."""

    model_config = ConfigDict(title="ClientRegistrationResponse")

    client_id: str
    client_id_issued_at: int = Field(description="Unix epoch seconds.")
    client_name: str
    redirect_uris: list[str]
    grant_types: list[Literal["authorization_code", "refresh_token"]]
    response_types: list[Literal["code"]]
    token_endpoint_auth_method: Literal["none"]
    scope: str


class ProtectedResourceMetadata(BaseModel):
    """RFC 9728 protected resource metadata of the MCP endpoint."""

    model_config = ConfigDict(title="ProtectedResourceMetadata")

    resource: str = Field(description="The MCP endpoint's URL.")
    authorization_servers: list[str] = Field(description="Issuers whose metadata is at `/.well-known/oauth-authorization-server`.")
    scopes_supported: list[str]
    bearer_methods_supported: list[Literal["header"]]
    resource_name: str
    resource_documentation: str


_OAUTH_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}}}
_REGISTER_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": ClientRegistrationRequest.model_json_schema()}},
    },
    # 429 (this route's hourly limit per address, and the edge's) is added with the other
    # /oauth/ refusals by codetether/api/openapi.py.
    "responses": {
        "400": {"description": "`invalid_redirect_uri` or `invalid_client_metadata` (RFC 7591 section 3.2.2)",
                "content": _OAUTH_ERROR},
        "404": {"description": "`registration_not_supported`: dynamic registration is switched off", "content": _OAUTH_ERROR},
    },
}
_NO_STORE = {"Cache-Control": {"description": "`no-store`", "schema": {"type": "string", "enum": ["no-store"]}}}


def _resource_metadata(request: Request, state) -> JSONResponse:
    public = public_base(request.scope, state.settings)
    return JSONResponse(resource_metadata(public.url), headers={"Cache-Control": public.cache_control})


def _error(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return oauth_error_response(status, error, description, headers)


def _metadata_error(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return f"{where}: {first.get('msg', 'invalid')}"


async def _rate_limited(request: Request, state) -> JSONResponse | None:
    limiter = state.extras.get("rate_limiter")
    if limiter is None:
        return None
    client = request.client.host if request.client else "unknown"
    outcome = await limiter.hit(RateLimitItemPerHour(state.settings.oauth_registrations_per_hour), "oauth_register", client)
    if outcome is None or outcome[0]:
        return None
    retry = max(1, int(outcome[1]["reset"] - time.time()))
    return _error(429, OAUTH_RATE_LIMITED, "too many client registrations from this address; retry later",
                  {"Retry-After": str(min(retry, 3600))})


@router.post(
    "/oauth/register", operation_id="oauthRegister", summary="Dynamic client registration (RFC 7591)",
    description=(
        "Registers a public OAuth client (`token_endpoint_auth_method: none`, PKCE S256 required at "
        "`/oauth/authorize`), as MCP hosts do. No credentials: limited per client address and hour "
        "(`CODETETHER_OAUTH_REGISTRATIONS_PER_HOUR`), switched off with `CODETETHER_OAUTH_DYNAMIC_REGISTRATION=false`."
    ),
    status_code=201,
    responses={201: {"model": ClientRegistrationResponse, "description": "The registered client", "headers": _NO_STORE}},
    openapi_extra=_REGISTER_OPENAPI,
)
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
    try:
        body = ClientRegistrationRequest.model_validate(meta)
    except ValidationError as err:
        return _error(400, "invalid_client_metadata", _metadata_error(err))
    # Only public clients register themselves; a secret handed to an unknown host protects nothing.
    method = "none"
    grants = body.grant_types or ["authorization_code", "refresh_token"]
    if "authorization_code" not in grants or not set(grants) <= SUPPORTED_GRANTS:
        return _error(400, "invalid_client_metadata", "grant_types must be authorization_code (and refresh_token)")
    if body.response_types is not None and body.response_types != ["code"]:
        return _error(400, "invalid_client_metadata", "response_types must be [\"code\"]")
    if body.scope is None:
        scopes = list(REGISTRABLE_SCOPES)
    else:
        scopes = [s for s in body.scope.split() if s]
        bad = [s for s in scopes if s not in REGISTRABLE_SCOPES]
        if bad or not scopes:
            return _error(400, "invalid_client_metadata", f"scope may hold only: {' '.join(REGISTRABLE_SCOPES)}")
    name = body.client_name
    try:
        client = await create_oauth_client(
            state.db, name=(name or "MCP client").strip()[:200] or "MCP client", redirect_uris=uris, public=True,
            scopes=scopes, self_registered=True,
        )
    except OAuthClientError as err:
        code = "invalid_redirect_uri" if "redirect" in str(err).lower() else "invalid_client_metadata"
        return _error(400, code, str(err))
    answer = {
        "client_id": client["client_id"],
        "client_id_issued_at": int(time.time()),
        "client_name": client["name"],
        "redirect_uris": client["redirect_uris"],
        "grant_types": sorted(set(grants)),
        "response_types": ["code"],
        "token_endpoint_auth_method": method,
        "scope": " ".join(client["scopes"]),
    }
    return JSONResponse(answer, status_code=201, headers={"Cache-Control": "no-store"})


def resource_metadata(base: str) -> dict[str, Any]:
    return {
        "resource": f"{base}{MCP_PATH}",
        "authorization_servers": [base],
        "scopes_supported": list(REGISTRABLE_SCOPES),
        "bearer_methods_supported": ["header"],
        "resource_name": "CodeTether MCP server",
        "resource_documentation": f"{base}/docs",
    }


_RESOURCE_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"model": ProtectedResourceMetadata, "description": "The metadata"}}


@router.get("/.well-known/oauth-protected-resource", operation_id="oauthProtectedResource",
            summary="Protected resource metadata of the MCP endpoint (RFC 9728)", responses=_RESOURCE_RESPONSES)
async def protected_resource(request: Request, state: State) -> JSONResponse:
    return _resource_metadata(request, state)


@router.get("/.well-known/oauth-protected-resource/mcp", operation_id="oauthProtectedResourceMcp",
            summary="Protected resource metadata at the MCP endpoint's path (RFC 9728 section 3.1)",
            responses=_RESOURCE_RESPONSES)
async def protected_resource_mcp(request: Request, state: State) -> JSONResponse:
    # RFC 9728 section 3.1: the metadata URL of a resource with a path inserts that path.
    return _resource_metadata(request, state)
