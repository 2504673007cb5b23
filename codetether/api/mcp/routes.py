"""Mounts the MCP face at ``/mcp``: the official ``mcp`` SDK's Streamable HTTP transport.

The SDK's session manager runs stateless (every POST is self-contained, so any API process can
serve any call) for the app's lifetime (``AppState.lifespan_hooks``). :class:`MCPAuth` stands in
front of it. It first checks ``Host`` and ``Origin`` against DNS rebinding
(``codetether/api/mcp/guard.py``; ``403`` with a JSON-RPC error), then authenticates per the MCP
authorization spec: a ``ct_`` API key or an OAuth
access token as ``Authorization: Bearer``, through the same authenticator, per-user rate limit
and Idempotency-Key handling as REST (``codetether/api/protocol_auth.py``). Without valid credentials the
answer is ``401`` with ``WWW-Authenticate: Bearer resource_metadata="…/.well-known/oauth-protected-resource"``
(RFC 9728), which is how MCP hosts find the authorization server and register themselves
(``codetether/api/oauth/registration.py``). The route is a plain Starlette route: the OpenAPI document does
not change.
"""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from codetether.api.edge.errors import Problem
from codetether.api.edge.public_base import public_base
from codetether.api.edge.streamcap import stream_slots
from codetether.api.mcp.guard import Refusal, TransportGuard
from codetether.api.mcp.server import build_server
from codetether.api.oauth.registration import MCP_PATH
from codetether.api.protocol_auth import authenticate
from codetether.api.state import AppState
from codetether.core.errors import ServiceError

log = logging.getLogger(__name__)


class MCPAuth:
    def __init__(self, state: AppState, session_manager) -> None:
        self.state = state
        self.session_manager = session_manager
        self._guard_key: tuple | None = None
        self._guard_value: TransportGuard | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        refusal = self._guard().check(request.headers)
        if refusal is not None:
            log.warning("mcp request refused: %s", refusal.message)
            await self._forbid(refusal, send)
            return
        try:
            principal = await authenticate(request, self.state)
        except Problem as problem:
            await self._refuse(request, problem, send)
            return
        if request.method != "GET":
            await self.session_manager.handle_request(scope, receive, send)
            return
        # GET is the server-to-client event stream, held open: it counts toward the per-user cap
        # on held-open requests like REST's and the console's streams.
        try:
            release = stream_slots(self.state).take(principal.user_id)
        except ServiceError as err:
            await self._refuse(request, Problem(err.status, err.code, err.message, headers=err.headers), send)
            return
        try:
            await self.session_manager.handle_request(scope, receive, send)
        finally:
            release()

    def _guard(self) -> TransportGuard:
        # Rebuilt whenever the settings it derives from change (tests change them on a live app).
        settings = self.state.settings
        key = (settings.public_url, settings.allowed_hosts, settings.api_host,
               settings.mcp_allowed_hosts, settings.mcp_allowed_origins)
        if self._guard_key != key:
            self._guard_key, self._guard_value = key, TransportGuard.from_settings(settings)
        return self._guard_value

    @staticmethod
    async def _forbid(refusal: Refusal, send: Send) -> None:
        body = json.dumps(refusal.body()).encode()
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    async def _refuse(self, request: Request, problem: Problem, send: Send) -> None:
        base = public_base(request.scope, self.state.settings).url
        headers = {k.lower(): v for k, v in problem.headers.items()}
        error = "invalid_token" if problem.status == 401 else problem.code
        if problem.status == 401:
            challenge = headers.get("www-authenticate", 'Bearer realm="codetether"')
            headers["www-authenticate"] = f'{challenge}, resource_metadata="{base}/.well-known/oauth-protected-resource"'
        body = json.dumps({"error": error, "error_description": problem.detail or problem.code,
                           "code": problem.code}).encode()
        headers["content-type"] = "application/json"
        await send({"type": "http.response.start", "status": problem.status,
                    "headers": [(k.encode(), v.encode()) for k, v in headers.items()]})
        await send({"type": "http.response.body", "body": body})


def install(app: FastAPI, state: AppState, version: str) -> None:
    server = build_server(state, version)
    # DNS-rebinding protection is MCPAuth's (guard.py), in front of authentication and with a
    # 403 for a bad Host too; the SDK's own check would come after it and answer 421.
    server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    manager = server.session_manager
    state.extras["mcp_server"] = server
    state.lifespan_hooks.append(manager.run)
    app.router.routes.append(Route(MCP_PATH, MCPAuth(state, manager), methods=["GET", "POST", "DELETE"]))
