"""Authentication for the agent-protocol faces (A2A at ``/a2a``, MCP at ``/mcp``).

Those endpoints are plain ASGI routes served by the protocol SDKs, not FastAPI routes, so they
cannot use ``codetether.api.deps.current_principal``; :func:`authenticate` does the same work for them: the
bearer token (API key or OAuth/OIDC access token) through the same :class:`codetether.api.auth.Authenticator`,
then the same ``on_authenticated`` hooks (per-user rate limit, Idempotency-Key claim). The
principal lands in ``request.state.principal`` exactly as for REST, so the rate-limit middleware
writes its headers and counts the call against the user.
"""

from __future__ import annotations

from starlette.requests import Request

from codetether.api.auth import END_USER_HEADER, Principal, unauthenticated
from codetether.api.edge.errors import Problem
from codetether.api.state import AppState
from codetether.accounts.credentials import API_KEY_PREFIX


def bearer_token(request: Request, state: AppState) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if state.settings.allow_query_api_key:
        token = request.query_params.get("api_key")
        if token and token.startswith(API_KEY_PREFIX):
            request.state.query_key_used = True
            return token
    return None


async def authenticate(request: Request, state: AppState) -> Principal:
    """The caller of a protocol request; raises a :class:`Problem` (401 or 429) like REST does."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    token = bearer_token(request, state)
    if not token:
        raise unauthenticated(error=None)
    principal = await state.authenticator.authenticate(token, request.headers.get(END_USER_HEADER))
    request.state.principal = principal
    if state.on_authenticated is not None:
        await state.on_authenticated(request, principal)
    return principal


def missing_scopes(principal: Principal, *scopes: str) -> list[str]:
    return [s for s in scopes if s not in principal.scopes]


def insufficient_scope(scopes: list[str]) -> Problem:
    return Problem(
        403,
        "insufficient_scope",
        f"this call needs the scope(s): {', '.join(scopes)}",
        headers={"WWW-Authenticate": f'Bearer realm="codetether", error="insufficient_scope", scope="{" ".join(scopes)}"'},
        extra={"required_scopes": list(scopes)},
    )
