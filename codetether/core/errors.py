"""Business refusals raised by the shared services in ``core/`` and shown by every face.

:class:`ServiceError` carries an HTTP-like status, a stable snake_case ``code``, a message and
optionally field errors and response headers. Each face maps it to its own shape: REST to
problem+json (``codetether/api/edge/errors.py``), the console to a message on the page, A2A to a JSON-RPC error
(``codetether/api/a2a/handler.py``), MCP to a tool error (``codetether/api/mcp/server.py``). So each rule is written
once, in ``core/``.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}
        if errors is None and field is not None:
            errors = [{"field": field, "message": message, "type": code}]
        self.errors = errors


def not_found(kind: str, ident: str) -> ServiceError:
    return ServiceError(404, f"{kind}_not_found", f"no {kind.replace('_', ' ')} {ident!r}")
