"""Completes the generated OpenAPI 3.1 document with what the API edge adds to every route.

FastAPI documents what a route declares; the edge (``codetether/api/edge/errors.py``, ``codetether/api/edge/ratelimit.py``,
``codetether/api/edge/idempotency.py``) answers more than that on every route. :func:`enrich` adds it, so clients
generated from ``/openapi.json`` and contract testers (schemathesis runs in the tests) see every
status the server can return: the problem responses (400 malformed JSON, 401, 403, 409/422 of
Idempotency-Key, 413, 415, 422, 429, 500), the ``Idempotency-Key`` header of authenticated POSTs
and the ``X-RateLimit-*`` / ``Idempotent-Replayed`` response headers. Called from
``codetether.api.app._custom_openapi``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from codetether.api.edge.errors import PROBLEM_JSON, is_oauth_path, problem_responses
from codetether.api.edge.ratelimit import EXEMPT_PATHS, UNLIMITED_HEADER_VALUE

_METHODS = ("get", "put", "post", "patch", "delete")
# Declared once under components.headers and referenced from every response that carries them.
_HEADER_REF = "#/components/headers/"
# The server's own request ids (new_id("req")) and the ones it echoes (RequestIdMiddleware).
REQUEST_ID_PATTERN = "^[A-Za-z0-9._:\\-]{1,128}$"
# X-RateLimit-* of an enterprise (unlimited) caller: codetether/api/edge/ratelimit.py, UNLIMITED_HEADER_VALUE.
_COUNT = {"type": "integer", "format": "int32", "minimum": 0, "maximum": UNLIMITED_HEADER_VALUE}
COMPONENT_HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "The caller's request id if it sent a sane one, else a generated one (quote it when reporting a problem).",
        "schema": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": REQUEST_ID_PATTERN},
    },
    "X-RateLimit-Limit": {"description": "Requests allowed per minute for this caller.", "schema": _COUNT},
    "X-RateLimit-Remaining": {"description": "Requests left in the current moving window.", "schema": _COUNT},
    "X-RateLimit-Reset": {
        "description": "Unix epoch seconds at which the oldest counted request leaves the window.",
        # Up to the end of year 9999.
        "schema": {"type": "integer", "format": "int64", "minimum": 0, "maximum": 253402300799},
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        # At most a minute for the per-minute limits, an hour for /oauth/register's hourly one.
        "schema": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 3600},
    },
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored response of an earlier request with the same Idempotency-Key.",
        "schema": {"type": "string", "enum": ["true"]},
    },
}
RATE_LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def _header_refs(*names: str) -> dict[str, dict[str, str]]:
    return {name: {"$ref": _HEADER_REF + name} for name in names}


IDEMPOTENCY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Makes the POST safe to retry: scoped to the caller, kept 24 h. The same key with the same request "
        "replays the first response (`Idempotent-Replayed: true`); with another request 422 "
        "`idempotency_key_reused`; while the first is in flight 409 `idempotency_key_in_use`."
    ),
    # No example: one fixed key shared by every operation would make generated calls collide
    # (the second operation to send it gets 422 idempotency_key_reused).
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]([\\x20-\\x7e]*[\\x21-\\x7e])?$"},
}
PROBLEM_EXAMPLE = {
    "type": "https://codetether.dev/problems/task-not-found",
    "title": "Not Found",
    "status": 404,
    "detail": "no task 'task_01J0000000000000000000000'",
    "code": "task_not_found",
    "request_id": "req_01J0000000000000000000000",
}


def _is_authenticated(op: dict[str, Any]) -> bool:
    return any(("bearerAuth" in req or "oauth2" in req) for req in op.get("security", []) or [])


def enrich(schema: dict[str, Any], app: FastAPI) -> None:
    settings = app.state.codetether.settings
    # Relative to the document's own URL unless the server has a public address: the committed
    # snapshot (default settings) stays the same on every machine.
    schema["servers"] = [
        {"url": settings.public_url.rstrip("/"), "description": "This server"} if settings.public_url
        else {"url": "/", "description": "This server (where this document was fetched from)"}
    ]
    components = schema.setdefault("components", {})
    components["headers"] = {name: dict(spec) for name, spec in COMPONENT_HEADERS.items()}
    components.setdefault("schemas", {})["OAuthError"] = OAUTH_ERROR_SCHEMA
    oauth2 = schema.get("components", {}).get("securitySchemes", {}).get("oauth2")
    if oauth2 is not None:
        code_flow = oauth2.get("flows", {}).get("authorizationCode", {})
        # The token endpoint also grants client_credentials (machine-to-machine integrations).
        oauth2["flows"].setdefault(
            "clientCredentials", {"tokenUrl": code_flow.get("tokenUrl", "/oauth/token"), "scopes": code_flow.get("scopes", {})}
        )
    problem = schema.setdefault("components", {}).setdefault("schemas", {}).get("Problem")
    if problem is not None:
        problem.setdefault("examples", [PROBLEM_EXAMPLE])
    for path, item in schema.get("paths", {}).items():
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            _enrich_operation(path, method, op)


def _add_problems(op: dict[str, Any], *statuses: int) -> None:
    responses = op.setdefault("responses", {})
    for status, spec in problem_responses(*statuses).items():
        key = str(status)
        existing = responses.get(key)
        if existing is None:
            responses[key] = spec
        elif PROBLEM_JSON not in existing.get("content", {}):
            # Keep the route's own description, but say the body is a problem.
            existing.setdefault("content", {})[PROBLEM_JSON] = spec["content"][PROBLEM_JSON]


OAUTH_ERROR_SCHEMA = {
    "type": "object",
    "title": "OAuthError",
    "description": "RFC 6749 section 5.2 error response (RFC 7591 section 3.2.2 at /oauth/register).",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "pattern": "^[\\x20-\\x21\\x23-\\x5b\\x5d-\\x7e]+$", "maxLength": 64,
                  "examples": ["invalid_grant", "temporarily_unavailable"]},
        "error_description": {"type": "string", "maxLength": 1000},
    },
}
OAUTH_ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}}}
# Refusals of the edge that the /oauth/ endpoints answer as OAuth errors (codetether/api/edge/).
OAUTH_EDGE_ERRORS = {
    413: "Request body too large (`invalid_request`)",
    429: "Rate limit exceeded (`temporarily_unavailable`, with Retry-After)",
}
# Client authentication (RFC 6749 section 2.3) is checked by the endpoint itself, in the form or
# the Authorization header, so no security scheme of the document applies.
CLIENT_AUTH_NOTE = (
    "Clients authenticate with `client_secret_basic` (HTTP Basic), `client_secret_post` (`client_id` and "
    "`client_secret` in the form) or, public clients, with `client_id` alone (`none`)."
)


def _document_oauth_errors(path: str, op: dict[str, Any]) -> None:
    """The OAuth endpoints answer in their RFCs' formats, not problem+json: say so."""
    responses = op.setdefault("responses", {})
    for status, description in OAUTH_EDGE_ERRORS.items():
        if status == 413 and "requestBody" not in op:
            continue
        responses[str(status)] = {"description": description, "content": OAUTH_ERROR_CONTENT}
    if path == "/oauth/authorize":
        html = {"text/html": {"schema": {"type": "string"}}}
        responses.setdefault("200", {"description": "A sign-in, consent or error page", "content": html})
        responses.setdefault("400", {"description": "Invalid request (an error page, never redirected)", "content": html})
        return
    if path == "/oauth/register":
        return  # RFC 7591's errors, declared by the route
    op.setdefault("description", CLIENT_AUTH_NOTE)
    for status, description in (("400", "Invalid request or grant"), ("401", "Client authentication failed")):
        responses.setdefault(status, {"description": description, "content": OAUTH_ERROR_CONTENT})


def _enrich_operation(path: str, method: str, op: dict[str, Any]) -> None:
    authenticated = _is_authenticated(op)
    if "security" not in op:
        # No security requirement declared by the route: it is public (probes, OAuth, reply
        # links, providers' inbound webhooks, discovery documents), which the document says.
        op["security"] = []
    has_body = "requestBody" in op
    has_params = bool(op.get("parameters")) or has_body
    statuses = [500]
    if path not in EXEMPT_PATHS:
        statuses.append(429)
    if authenticated:
        statuses += [401, 403]
    if has_params:
        statuses.append(422)
    if method in ("post", "put", "patch"):
        statuses.append(413)
        if path.startswith("/v1/"):
            statuses += [400, 415]
    if method == "post" and authenticated:
        statuses += [409, 422]
        params = op.setdefault("parameters", [])
        if not any(p.get("name") == "Idempotency-Key" for p in params):
            params.append(dict(IDEMPOTENCY_PARAMETER))
    if is_oauth_path(path):
        _document_oauth_errors(path, op)
        statuses = [s for s in statuses if s not in OAUTH_EDGE_ERRORS]
    _add_problems(op, *sorted(set(statuses)))
    for status, response in op.get("responses", {}).items():
        headers = response.setdefault("headers", {})
        headers.update(_header_refs("X-Request-ID"))
        if path not in EXEMPT_PATHS:
            headers.update(_header_refs(*RATE_LIMIT_HEADERS))
        if status == "429":
            headers.update(_header_refs("Retry-After"))
        if method == "post" and authenticated:
            headers.update(_header_refs("Idempotent-Replayed"))
