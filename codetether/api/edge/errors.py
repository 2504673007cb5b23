"""RFC 9457 problem details for every error the API returns, each with a stable ``code``.

Route code raises :class:`Problem`; the handlers here also turn FastAPI's validation errors,
Starlette's 404/405 and unexpected exceptions into ``application/problem+json`` without leaking
internals. :class:`BodyGuardMiddleware` answers ``413`` (body over :data:`MAX_BODY_BYTES`; OAuth's
``invalid_request`` under ``/oauth/``) and ``415`` (a non-JSON body sent to a JSON route under
``/v1``) before a route reads anything, and
malformed JSON is ``400 malformed_json``. :class:`UnhandledErrorMiddleware` sits innermost, so an
unexpected exception becomes a ``500`` problem that still passes through every other middleware
(request id, rate-limit headers, idempotency release) instead of Starlette's bare error page.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Receive, Scope, Send

from codetether.api.edge.middleware import HTTPMiddleware, StartTracker
from codetether.core.errors import ServiceError
from codetether.core.jsonsafe import CODES as JSON_SAFETY_CODES
from codetether.core.logging import request_id_var

log = logging.getLogger("codetether.api")

PROBLEM_TYPE_BASE = "https://codetether.dev/problems/"
PROBLEM_JSON = "application/problem+json"
# The OAuth endpoints answer refusals the edge makes before them (rate limits) in OAuth's own
# format, ``{"error", "error_description"}`` as application/json (RFC 6749 section 5.2): strict
# OAuth clients (oauth4webapi) read an error body only from a 4xx application/json response.
OAUTH_PATH_PREFIX = "/oauth/"
# RFC 6749 section 4.1.2.1's code for a server that cannot handle the request for now; section
# 5.2 has none for a rate limit, and OAuth clients pass any code through with the status.
OAUTH_RATE_LIMITED = "temporarily_unavailable"
# Path prefix -> async renderer(request, ServiceError) of faces that answer in HTML (api/console/).
HTML_FACES: dict[str, Any] = {}


class Problem(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        detail: str | None = None,
        *,
        title: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or code)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or _title(status)
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_body(
    status: int, code: str, detail: str | None, *, title: str | None = None, errors=None, extra=None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code.replace("_", "-"),
        "title": title or _title(status),
        "status": status,
        "detail": detail or _title(status),
        "code": code,
        "request_id": request_id_var.get(),
    }
    if errors is not None:
        body["errors"] = errors
    if extra:
        body.update(extra)
    return body


def problem_response(
    status: int,
    code: str,
    detail: str | None = None,
    *,
    title: str | None = None,
    errors=None,
    headers: dict[str, str] | None = None,
    extra=None,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, code, detail, title=title, errors=errors, extra=extra),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def is_oauth_path(path: str) -> bool:
    return path.startswith(OAUTH_PATH_PREFIX)


def oauth_error_body(error: str, description: str) -> dict[str, str]:
    return {"error": error, "error_description": description}


def oauth_error_response(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An RFC 6749 section 5.2 error answer, never cached."""
    return JSONResponse(oauth_error_body(error, description), status_code=status,
                        headers={"Cache-Control": "no-store", **(headers or {})})


def problem_from(err: ServiceError) -> JSONResponse:
    """The problem response of a domain refusal, from the error's own status, code and message."""
    return problem_response(err.status, err.code, err.message, errors=err.errors, headers=err.headers)


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


_OWN_CODES = JSON_SAFETY_CODES


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        # loc starts with where the value was (body, query, path, header); the rest is the field.
        raw = list(err.get("loc", ()))
        loc = [str(p) for p in (raw[1:] if raw and raw[0] in ("body", "query", "path", "header", "cookie") else raw)]
        out.append(
            {
                "field": ".".join(loc) or "body",
                "location": str(err.get("loc", ["body"])[0]),
                "message": err.get("msg", "invalid"),
                "type": err.get("type", "value_error"),
            }
        )
    return out


def allowed_methods(app: FastAPI, path: str) -> list[str] | None:
    """The methods the OpenAPI document declares for ``path`` (what a 405's ``Allow`` lists).

    Starlette's own ``Allow`` names only the first route that matched the path, while GET and
    DELETE of one resource are separate routes; the spec is what clients read, so it decides.
    """
    patterns = getattr(app.state, "allow_patterns", None)
    if patterns is None:
        patterns = []
        for template, item in app.openapi().get("paths", {}).items():
            regex = "".join(
                "[^/]+" if part.startswith("{") else re.escape(part) for part in re.split(r"(\{[^/}]+\})", template)
            )
            methods = [m.upper() for m in ("get", "put", "post", "patch", "delete") if m in item]
            patterns.append((re.compile(f"^{regex}$"), methods))
        app.state.allow_patterns = patterns
    for regex, methods in patterns:
        if regex.match(path):
            return methods
    return None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        for prefix, render in HTML_FACES.items():
            if request.url.path.startswith(prefix):
                return await render(request, ServiceError(exc.status, exc.code, exc.detail or exc.title,
                                                          headers=exc.headers))
        return problem_response(
            exc.status, exc.code, exc.detail, title=exc.title, errors=exc.errors, headers=exc.headers, extra=exc.extra
        )

    @app.exception_handler(ServiceError)
    async def _service(request: Request, exc: ServiceError) -> Response:
        # A face that renders HTML (the console) shows the refusal as a page of its own.
        for prefix, render in HTML_FACES.items():
            if request.url.path.startswith(prefix):
                return await render(request, exc)
        return problem_from(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Tells the idempotency layer the endpoint never ran, so the key is not spent on it.
        request.scope.setdefault("state", {})["request_invalid"] = True
        errors = _field_errors(exc)
        if any(e["type"] == "json_invalid" for e in errors):
            return problem_response(
                400, "malformed_json", "the request body is not valid JSON", errors=[e for e in errors if e["type"] == "json_invalid"]
            )
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        # Checks with their own stable code (codetether/core/jsonsafe.py) name it instead of the generic one.
        code = next((e["type"] for e in errors if e["type"] in _OWN_CODES), "validation_error")
        return problem_response(422, code, detail or "the request is not valid", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, _BodyTooLarge):
            # The body grew past the limit while the route read it (no Content-Length).
            return _too_large(request.scope)
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else None
        if exc.status_code == 404 and detail == "Not Found":
            detail = "no such route"
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            allowed = allowed_methods(request.app, request.url.path)
            if allowed:
                headers["Allow"] = ", ".join(allowed)
        return problem_response(exc.status_code, code, detail, headers=headers or None)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return internal_error_response()

    # Added first, so it is the innermost middleware (see the module docstring).
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(BodyGuardMiddleware)


def internal_error_response() -> JSONResponse:
    return problem_response(500, "internal_error", "an unexpected error occurred; quote the request_id when reporting it")


async def _send_response(response: JSONResponse, scope: Scope, receive: Receive, send: Send) -> None:
    await response(scope, receive, send)


class UnhandledErrorMiddleware(HTTPMiddleware):
    """Turns an exception that escaped every handler into a 500 problem (no stack trace)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracked = StartTracker(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            if tracked.started:
                # Part of a response went out already (a stream); nothing sane can follow it.
                raise
            log.exception("unhandled error", exc_info=exc)
            await _send_response(internal_error_response(), scope, receive, send)


# Larger bodies are refused with 413 before any route reads them (a task's description is at
# most 100,000 characters and its metadata 16 KiB, so 1 MiB leaves ample room).
MAX_BODY_BYTES = 1024 * 1024
# Routes that read their own (large, multipart) body as a stream and enforce their own limits:
# the file upload (codetether/api/rest/routes/files.py).
STREAMED_BODY_PATHS = frozenset({"/v1/automation/files"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_JSON_TYPES = ("application/json", "application/merge-patch+json")


class BodyGuardMiddleware(HTTPMiddleware):
    """413 for oversized bodies anywhere; 415 for non-JSON bodies sent to the JSON API (/v1)."""

    def applies(self, scope: Scope) -> bool:
        return scope.get("method") in _BODY_METHODS and scope.get("path") not in STREAMED_BODY_PATHS

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers", []))
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            await _send_response(_too_large(scope), scope, receive, send)
            return
        ctype = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
        if (
            scope.get("path", "").startswith("/v1/")
            # Providers post inbound email as forms (api/inbound/).
            and not scope.get("path", "").startswith("/v1/inbound/")
            and ctype
            and not (ctype in _JSON_TYPES or ctype.endswith("+json"))
            and (length is None or length != b"0")
        ):
            await _send_response(
                problem_response(415, "unsupported_media_type", f"send the body as application/json, not {ctype}"),
                scope,
                receive,
                send,
            )
            return
        received = 0

        async def _receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    raise _BodyTooLarge()
            return message

        tracked = StartTracker(send)
        try:
            await self.app(scope, _receive, tracked)
        except _BodyTooLarge:
            if tracked.started:
                raise
            await _send_response(_too_large(scope), scope, receive, send)


class _BodyTooLarge(StarletteHTTPException):
    # An HTTPException, so FastAPI's body reader passes it on (as 413) instead of calling it a parse error.
    def __init__(self) -> None:
        super().__init__(413, f"the request body is larger than {MAX_BODY_BYTES} bytes")


def _too_large(scope: Scope) -> JSONResponse:
    detail = f"the request body is larger than {MAX_BODY_BYTES} bytes"
    if is_oauth_path(scope.get("path", "")):
        return oauth_error_response(413, "invalid_request", detail)
    return problem_response(413, "payload_too_large", detail)


# Reusable OpenAPI descriptions of error responses.
def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "Bad request",
        401: "Missing or invalid credentials",
        402: "The month's budget is spent (budget_exhausted)",
        403: "The credentials lack a required scope",
        404: "Not found (or not yours)",
        405: "Method not allowed",
        409: "Conflict with the resource's current state (or an Idempotency-Key still in flight)",
        413: "Request body too large",
        415: "Unsupported media type (send application/json)",
        422: "Validation error (or an Idempotency-Key reused with another request)",
        429: "Rate limit exceeded",
        500: "Unexpected server error",
        503: "A dependency (Temporal or the database) is unavailable",
    }
    return {
        s: {
            "description": descriptions.get(s, _title(s)),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for s in statuses
    }
