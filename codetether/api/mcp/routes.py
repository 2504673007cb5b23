"""Mounts the MCP face at ``/mcp``: the official ``mcp`` SDK's Streamable HTTP transport.

Two session managers of the SDK serve it for the app's lifetime (``AppState.lifespan_hooks``):

- stateless, for every request without an ``Mcp-Session-Id``: each POST is self-contained, so any
  API process can serve any call;
- with sessions, for a client whose ``initialize`` declares the ``elicitation`` capability: the
  answer carries an ``Mcp-Session-Id``, and the session is what lets ``wait_for_task`` send that
  client an ``elicitation/create`` request and receive its answer (``codetether/api/mcp/elicit.py``).
  Sessions live in the memory of the API process that opened them (several API processes need
  sticky routing on the header for such clients); ``DELETE`` ends one, and so does
  ``CODETETHER_MCP_SESSION_IDLE_SECONDS`` without a request in flight. A session is bound to the
  user who opened it: the same id with another user's credentials is ``404``, as an unknown one is.

:class:`MCPAuth` stands in front of both. It first checks ``Host`` and ``Origin`` against DNS
rebinding (``codetether/api/mcp/guard.py``; ``403`` with a JSON-RPC error), then authenticates
every request per the MCP authorization spec: a ``ct_`` API key or an OAuth
access token as ``Authorization: Bearer``, through the same authenticator, per-user rate limit
and Idempotency-Key handling as REST (``codetether/api/protocol_auth.py``). Without valid credentials the
answer is ``401`` with ``WWW-Authenticate: Bearer resource_metadata="…/.well-known/oauth-protected-resource"``
(RFC 9728), which is how MCP hosts find the authorization server and register themselves
(``codetether/api/oauth/registration.py``). A ``GET`` (the server-to-client event stream, held open)
counts toward the per-user cap on held-open requests. The route is a plain Starlette route: the
OpenAPI document does not change.
"""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import (
    DEFAULT_MAX_REQUEST_BODY_SIZE,
    TransportSecuritySettings,
)
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

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
    def __init__(self, state: AppState, stateless: StreamableHTTPSessionManager,
                 sessions: StreamableHTTPSessionManager) -> None:
        self.state = state
        self.stateless = stateless
        self.sessions = sessions
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
        manager = self.stateless
        if request.headers.get(MCP_SESSION_ID_HEADER) is not None:
            manager = self.sessions
        elif request.method == "POST":
            body, receive = await _peek_body(receive)
            if _opens_session(body):
                manager = self.sessions
        if manager is self.sessions:
            # What the SDK binds a session to and compares on every later request (404 on a mismatch).
            scope["user"] = AuthenticatedUser(AccessToken(token="", client_id=principal.user_id,
                                                          subject=principal.user_id, scopes=list(principal.scopes)))
        if request.method != "GET":
            await manager.handle_request(scope, receive, send)
            return
        # GET is the server-to-client event stream, held open: it counts toward the per-user cap
        # on held-open requests like REST's and the console's streams.
        try:
            release = stream_slots(self.state).take(principal.user_id)
        except ServiceError as err:
            await self._refuse(request, Problem(err.status, err.code, err.message, headers=err.headers), send)
            return
        try:
            await manager.handle_request(scope, receive, send)
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


async def _peek_body(receive: Receive) -> tuple[bytes | None, Receive]:
    """Reads the request body (up to the transport's size limit) and returns it with a ``receive``
    that hands it on unchanged. A longer body is not looked at (None); the transport refuses it."""
    chunks: list[bytes] = []
    size, more = 0, True
    while more and size <= DEFAULT_MAX_REQUEST_BODY_SIZE:
        message = await receive()
        if message["type"] != "http.request":
            chunks = [message]  # a disconnect: pass it on as it came
            break
        chunks.append(message)
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    pending = list(chunks)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    complete = not more and all(m["type"] == "http.request" for m in chunks)
    return (b"".join(m.get("body", b"") for m in chunks) if complete else None), replay


def _opens_session(body: bytes | None) -> bool:
    """Whether the request is an ``initialize`` whose client declares ``elicitation``."""
    try:
        message = json.loads(body) if body else None
    except ValueError:
        return False
    if not isinstance(message, dict) or message.get("method") != "initialize":
        return False
    params = message.get("params")
    capabilities = params.get("capabilities") if isinstance(params, dict) else None
    return isinstance(capabilities, dict) and isinstance(capabilities.get("elicitation"), dict)


def install(app: FastAPI, state: AppState, version: str) -> None:
    server = build_server(state, version)
    # DNS-rebinding protection is MCPAuth's (guard.py), in front of authentication and with a
    # 403 for a bad Host too; the SDK's own check would come after it and answer 421.
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    server.streamable_http_app(streamable_http_path=MCP_PATH, stateless_http=True, transport_security=security)
    stateless = server.session_manager
    sessions = StreamableHTTPSessionManager(
        app=server._lowlevel_server,  # the SDK builds its own manager on it the same way
        stateless=False, security_settings=security,
        session_idle_timeout=state.settings.mcp_session_idle_seconds, max_sessions=state.settings.mcp_max_sessions,
    )
    state.extras["mcp_server"] = server
    state.lifespan_hooks.extend([stateless.run, sessions.run])
    app.router.routes.append(Route(MCP_PATH, MCPAuth(state, stateless, sessions), methods=["GET", "POST", "DELETE"]))
