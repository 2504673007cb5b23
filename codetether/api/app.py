"""The FastAPI application factory: routers, middleware, error handlers, OpenAPI.

``create_app(settings)`` is what ``codetether api``/``codetether dev`` serve and what the tests
mount. The app owns one :class:`codetether.api.state.AppState` (database, lazy Temporal client, catalog).
"""

from __future__ import annotations

import asyncio
import re
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.types import Message, Receive, Scope, Send
from temporalio.client import Client

from codetether.api.edge.errors import install_error_handlers
from codetether.api.edge.middleware import HTTPMiddleware, add_response_headers, request_header
from codetether.api.state import AppState
from codetether.core.config import Settings, get_settings
from codetether.core.db import Database
from codetether.core.ids import new_id
from codetether.core.logging import request_id_var

VERSION = "0.1.0"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class RequestIdMiddleware(HTTPMiddleware):
    """Echoes a sane ``X-Request-ID`` or makes one, and puts it in the logging context."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = request_header(scope, b"x-request-id")
        incoming = raw.decode("latin-1") if raw is not None else None
        rid = incoming if incoming and _SANE_REQUEST_ID.match(incoming) else new_id("req")
        scope.setdefault("state", {})["request_id"] = rid
        token = request_id_var.set(rid)

        async def _send(message: Message) -> None:
            if message["type"] == "http.response.start":
                add_response_headers(message, [(b"x-request-id", rid.encode())])
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            request_id_var.reset(token)


def _install_proxy_headers(app: FastAPI, settings: Settings) -> None:
    # Outermost: every layer (rate limits per client IP, cookies' Secure, logs) sees the client's
    # address and scheme as the trusted proxy reported them. From any other peer the headers are
    # ignored. uvicorn's own handling is off (codetether/api/httpserver.py), so this is the only one.
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    trusted = [h.strip() for h in settings.trusted_proxies.split(",") if h.strip()]
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=trusted or [])


def _install_routers(app: FastAPI) -> None:
    from codetether.api.oauth import authorize as oauth_authorize
    from codetether.api.oauth import clients as oauth_clients
    from codetether.api.oauth import metadata as oauth_metadata
    from codetether.api.oauth import registration as oauth_registration
    from codetether.api.oauth import tokens as oauth_tokens
    from codetether.api.rest.routes import (
        api_keys, artifacts, budget, codebases, conversation, embed_sessions, events, files, health, meta, partners,
        sponsorships, tasks, webhooks,
    )

    # Order matters: it is the order of the paths in /openapi.json.
    for module in (health, tasks, conversation, events, webhooks, meta, budget, api_keys, codebases, artifacts, files,
                   partners, embed_sessions, sponsorships,
                   oauth_authorize, oauth_tokens, oauth_metadata, oauth_clients, oauth_registration):
        app.include_router(module.router)
    _install_faces(app)


def _install_faces(app: FastAPI) -> None:
    # Faces beyond REST and OAuth: reply links, inbound email, the web console, offline API docs, the embed.
    from codetether.api import console
    from codetether.api import docs
    from codetether.api import embed
    from codetether.api.inbound import routes as inbound
    from codetether.api.reply import routes as reply

    for module in (reply, inbound):
        app.include_router(module.router)
    console.install(app, app.state.codetether)
    docs.install(app)
    embed.install(app)


def _install_agent_faces(app: FastAPI, state: AppState) -> None:
    # A2A (/.well-known/agent-card.json, /a2a) and MCP (/mcp): SDK-served, not in the OpenAPI document.
    from codetether.api.a2a.routes import install as install_a2a
    from codetether.api.mcp.routes import install as install_mcp

    install_a2a(app, state, VERSION)
    install_mcp(app, state, VERSION)


def _install_auth(app: FastAPI, state: AppState) -> None:
    from codetether.api.auth_extensions import install_auth_extensions

    install_auth_extensions(app, state)


def _install_edge(app: FastAPI, state: AppState) -> None:
    # Rate limits before idempotency: a refused call must not claim its Idempotency-Key.
    from codetether.api.edge import idempotency
    from codetether.api.edge import ratelimit

    ratelimit.install(app, state)
    idempotency.install(app, state)


def _install_metrics(app: FastAPI, state: AppState) -> None:
    # Last, so its middleware wraps the others and also counts what rate limiting refuses.
    from codetether.api.edge.metrics import install

    install(app, state)


# Layers `fn(app, state)` that create_app installs after the routers, in this order
# (bench/edge_overhead.py builds an app without `_install_edge` to measure its cost).
EXTENSIONS: list = [_install_auth, _install_edge, _install_metrics]


def _custom_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title="CodeTether API",
        version=VERSION,
        openapi_version="3.1.0",
        summary="Durable AI-agent tasks for Zapier, n8n, Make and plain REST.",
        description=(
            "Create a task, follow it (poll with `?wait=`, SSE or webhooks), answer the agent when it asks, "
            "and receive signed webhooks. Authenticate with `Authorization: Bearer ct_...` or an OAuth 2.0 "
            "access token. Errors are RFC 9457 problem details with a stable `code`."
        ),
        routes=app.routes,
        license_info={"name": "Apache-2.0", "identifier": "Apache-2.0"},
        tags=[
            {"name": "tasks", "description": "Create, follow and cancel agent tasks."},
            {"name": "conversation", "description": "Answer questions and continue conversations."},
            {"name": "events", "description": "The per-task event log and SSE stream."},
            {"name": "webhooks", "description": "Webhook subscriptions and deliveries."},
            {"name": "account", "description": "The caller, models and codebases."},
            {"name": "api-keys", "description": "Manage API keys."},
            {"name": "oauth", "description": "OAuth 2.0 authorization server."},
            {"name": "operations", "description": "Health, readiness and metrics."},
            {"name": "reply-links", "description": "Signed links that answer one question without an API key."},
            {"name": "inbound-email", "description": "Email replies from providers' inbound webhooks."},
        ],
    )
    comps = schema.setdefault("components", {})
    comps.setdefault("schemas", {})["Problem"] = {
        "type": "object",
        "title": "Problem",
        "description": "RFC 9457 problem details.",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "code": {"type": "string", "description": "Stable, snake_case error code."},
            "request_id": {"type": ["string", "null"]},
            "errors": {"type": "array", "items": {"type": "object"}},
        },
    }
    from codetether.api.openapi import enrich

    enrich(schema, app)
    app.openapi_schema = schema
    return schema


async def _warm_temporal(state: AppState) -> None:
    try:
        await state.temporal()
    except Exception:  # noqa: BLE001 - the API serves reads without Temporal; /readyz reports it
        pass


def create_app(
    settings: Settings | None = None, *, db: Database | None = None, temporal_client: Client | None = None
) -> FastAPI:
    settings = settings or get_settings()
    own_db = db is None
    db = db or Database.from_settings(settings)
    state = AppState(settings, db, temporal_client)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        # Connect at start-up rather than on the first request, so a fresh namespace gets its
        # search attributes (and the log says so) before anyone creates a task.
        warm = asyncio.create_task(_warm_temporal(state)) if temporal_client is None else None
        try:
            async with AsyncExitStack() as stack:
                # Long-lived parts of the faces (the MCP session manager) run for the app's life.
                for hook in state.lifespan_hooks:
                    await stack.enter_async_context(hook())
                yield
        finally:
            if warm is not None:
                warm.cancel()
            await state.close()
            if own_db:
                await db.dispose()

    app = FastAPI(
        title="CodeTether API",
        version=VERSION,
        lifespan=lifespan,
        docs_url=None,  # codetether/api/docs.py serves /docs and /redoc with local assets
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.codetether = state
    install_error_handlers(app)
    _install_routers(app)
    _install_agent_faces(app, state)
    for installer in EXTENSIONS:
        installer(app, state)
    app.add_middleware(RequestIdMiddleware)
    _install_proxy_headers(app, settings)

    app.openapi = lambda: _custom_openapi(app)  # type: ignore[method-assign]

    @app.get("/.well-known/openapi.json", include_in_schema=False)
    async def well_known_openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    return app

