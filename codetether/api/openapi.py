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

from codetether.api.edge.errors import PROBLEM_JSON, problem_responses
from codetether.api.edge.ratelimit import EXEMPT_PATHS

_METHODS = ("get", "put", "post", "patch", "delete")
_INT = {"type": "integer"}

RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": {"description": "Requests allowed per minute for this caller.", "schema": _INT},
    "X-RateLimit-Remaining": {"description": "Requests left in the current moving window.", "schema": _INT},
    "X-RateLimit-Reset": {
        "description": "Unix epoch seconds at which the oldest counted request leaves the window.",
        "schema": _INT,
    },
}
REQUEST_ID_HEADER = {
    "X-Request-ID": {"description": "The caller's request id if it sent a sane one, else a generated one.", "schema": {"type": "string"}}
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": _INT}}
REPLAYED_HEADER = {
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored response of an earlier request with the same Idempotency-Key.",
        "schema": {"type": "string", "enum": ["true"]},
    }
}
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
    "description": "RFC 6749 section 5.2 error response.",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
}


def _document_oauth_errors(path: str, op: dict[str, Any]) -> None:
    """The OAuth endpoints answer in their RFCs' formats, not problem+json: say so."""
    responses = op.setdefault("responses", {})
    if path == "/oauth/authorize":
        html = {"text/html": {"schema": {"type": "string"}}}
        responses.setdefault("200", {"description": "A sign-in, consent or error page", "content": html})
        responses.setdefault("400", {"description": "Invalid request (an error page, never redirected)", "content": html})
        return
    for status, description in (("400", "Invalid request or grant"), ("401", "Client authentication failed")):
        responses.setdefault(status, {"description": description, "content": {"application/json": {"schema": OAUTH_ERROR_SCHEMA}}})


def _enrich_operation(path: str, method: str, op: dict[str, Any]) -> None:
    authenticated = _is_authenticated(op)
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
    if path.startswith("/oauth/"):
        _document_oauth_errors(path, op)
    if method == "post" and authenticated:
        statuses += [409, 422]
        params = op.setdefault("parameters", [])
        if not any(p.get("name") == "Idempotency-Key" for p in params):
            params.append(dict(IDEMPOTENCY_PARAMETER))
    _add_problems(op, *sorted(set(statuses)))
    for status, response in op.get("responses", {}).items():
        headers = response.setdefault("headers", {})
        headers.update(REQUEST_ID_HEADER)
        if path not in EXEMPT_PATHS:
            headers.update(RATE_LIMIT_HEADERS)
        if status == "429":
            headers.update(RETRY_AFTER)
        if method == "post" and authenticated:
            headers.update(REPLAYED_HEADER)
