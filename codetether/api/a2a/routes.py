"""Mounts the A2A face: the agent card and the JSON-RPC endpoint, both served by a2a-sdk.

``/.well-known/agent-card.json`` is the SDK's card route (the card's URLs follow the public base
URL, or the request's; cached for an hour, or privately for five minutes when the base comes from
the request). ``/a2a`` (and ``/a2a/``) is the SDK's JSON-RPC dispatcher (``create_jsonrpc_routes``)
behind :class:`A2AAuth`, which authenticates the caller with the same credentials, rate limits
and Idempotency-Key handling as REST (``codetether/api/protocol_auth.py``) before the SDK reads the body.
Refusals before the dispatcher are HTTP 401/429 (``WWW-Authenticate``, ``Retry-After``) with a
JSON-RPC error body; everything after is the SDK's JSON-RPC error shape. The routes are plain
Starlette routes, so the REST OpenAPI document does not change.
"""

from __future__ import annotations

import contextvars
import json

from a2a.server.context import ServerCallContext
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.routes.common import DefaultServerCallContextBuilder
from a2a.types.a2a_pb2 import AgentCard
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH
from fastapi import FastAPI
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from codetether.api.a2a.card import A2A_PATH, build_card
from codetether.api.a2a.handler import (
    HTTP_REQUEST_ID_KEY,
    PRINCIPAL_KEY,
    RAW_PARAMS_KEY,
    CodeTetherRequestHandler,
)
from codetether.api.edge.errors import Problem
from codetether.api.edge.public_base import public_base
from codetether.api.protocol_auth import authenticate
from codetether.api.state import AppState

_base_url: contextvars.ContextVar[str] = contextvars.ContextVar("a2a_base_url", default="http://127.0.0.1:8000")


class ContextBuilder(DefaultServerCallContextBuilder):
    """The SDK's context plus the authenticated principal and the HTTP request id."""

    def build(self, request: Request) -> ServerCallContext:
        context = super().build(request)
        context.state[PRINCIPAL_KEY] = getattr(request.state, "principal", None)
        context.state[HTTP_REQUEST_ID_KEY] = getattr(request.state, "request_id", None)
        # The params as sent: the SDK's parsing turns an unknown enum value into the default, which
        # a method that must refuse it (ListTasks' status) cannot tell apart otherwise. The SDK has
        # read the body through this request, which keeps it.
        body = getattr(request, "_json", None)
        if isinstance(body, dict) and isinstance(body.get("params"), dict):
            context.state[RAW_PARAMS_KEY] = body["params"]
        return context


def _jsonrpc_refusal(problem: Problem) -> tuple[dict, bytes]:
    body = {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32600, "message": problem.detail or problem.code, "data": {"code": problem.code}},
    }
    headers = {"content-type": "application/json", **{k.lower(): v for k, v in problem.headers.items()}}
    return headers, json.dumps(body).encode()


class A2AAuth:
    """ASGI wrapper of the SDK's JSON-RPC route: authenticate first, then dispatch."""

    def __init__(self, app, state: AppState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            await authenticate(request, self.state)
        except Problem as problem:
            headers, body = _jsonrpc_refusal(problem)
            await send({"type": "http.response.start", "status": problem.status,
                        "headers": [(k.encode(), v.encode()) for k, v in headers.items()]})
            await send({"type": "http.response.body", "body": body})
            return
        if not _is_json(request.headers.get("content-type")):
            body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {
                "code": CONTENT_TYPE_NOT_SUPPORTED, "message": "send the JSON-RPC request as application/json",
                "data": {"code": "unsupported_media_type"}}}).encode()
            await send({"type": "http.response.start", "status": 415,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


# A2A's ContentTypeNotSupportedError: also the answer to a request body that is not JSON.
CONTENT_TYPE_NOT_SUPPORTED = -32005


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


# The card's caching (the SDK adds its ETag and answers If-None-Match with 304). A card naming a
# base taken from the request may be kept by the client that asked, never by a shared cache.
CARD_CACHE_PUBLIC = b"public, max-age=3600"
CARD_CACHE_PRIVATE = b"private, max-age=300"


class CardBase:
    """ASGI wrapper of the SDK's card route that tells the card which base URL to show."""

    def __init__(self, app, state: AppState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        public = public_base(scope, self.state.settings)

        async def _send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in (b"cache-control", b"vary")]
                extra = [(b"cache-control", CARD_CACHE_PUBLIC)] if public.configured else \
                    [(b"cache-control", CARD_CACHE_PRIVATE), (b"vary", b"Host")]
                message = {**message, "headers": [*headers, *extra]}
            await send(message)

        token = _base_url.set(public.url)
        try:
            await self.app(scope, receive, _send)
        finally:
            _base_url.reset(token)


def install(app: FastAPI, state: AppState, version: str) -> None:
    handler = CodeTetherRequestHandler(state)
    state.extras["a2a_handler"] = handler

    async def card_for_request(_card: AgentCard) -> AgentCard:
        return build_card(_base_url.get(), version)

    for route in create_agent_card_routes(build_card("http://127.0.0.1", version), card_modifier=card_for_request,
                                          card_url=AGENT_CARD_WELL_KNOWN_PATH):
        app.router.routes.append(Route(route.path, CardBase(route.app, state), methods=["GET"]))
    for route in create_jsonrpc_routes(handler, rpc_url=A2A_PATH, context_builder=ContextBuilder(),
                                       enable_v0_3_compat=True):
        endpoint = A2AAuth(route.app, state)
        # The same endpoint with a trailing slash (rather than a redirect a JSON-RPC client won't follow).
        for path in (route.path, route.path.rstrip("/") + "/"):
            app.router.routes.append(Route(path, endpoint, methods=["POST"]))
