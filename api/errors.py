"""RFC 9457 problem details for every error the API returns, each with a stable ``code``.

Route code raises :class:`Problem`; the handlers here also turn FastAPI's validation errors,
Starlette's 404/405 and unexpected exceptions into ``application/problem+json`` without leaking
internals.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.logging import request_id_var

log = logging.getLogger("codetether.api")

PROBLEM_TYPE_BASE = "https://codetether.dev/problems/"
PROBLEM_JSON = "application/problem+json"


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


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        out.append(
            {
                "field": ".".join(loc) or "body",
                "location": str(err.get("loc", ["body"])[0]),
                "message": err.get("msg", "invalid"),
                "type": err.get("type", "value_error"),
            }
        )
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            exc.status, exc.code, exc.detail, title=exc.title, errors=exc.errors, headers=exc.headers, extra=exc.extra
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _field_errors(exc)
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem_response(422, "validation_error", detail or "the request is not valid", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else None
        if exc.status_code == 404 and detail == "Not Found":
            detail = "no such route"
        return problem_response(exc.status_code, code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return problem_response(500, "internal_error", "an unexpected error occurred; quote the request_id when reporting it")


# Reusable OpenAPI descriptions of error responses.
def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "Bad request",
        401: "Missing or invalid credentials",
        403: "The credentials lack a required scope",
        404: "Not found (or not yours)",
        409: "Conflict with the resource's current state",
        422: "Validation error",
        429: "Rate limit exceeded",
        503: "A dependency (Temporal or the database) is unavailable",
    }
    return {
        s: {
            "description": descriptions.get(s, _title(s)),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for s in statuses
    }
