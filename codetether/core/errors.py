"""Business refusals raised by the domain services and shown by every face.

:class:`ServiceError` is the one family of domain errors: it carries an HTTP-like status, a
stable snake_case ``code``, a message and optionally field errors and response headers. Domain
modules subclass it where they want a name of their own (``ConversationError`` in
``codetether/tasks/conversation.py``, ``CodebaseError`` in ``codetether/codebases/service.py``,
``AccountError`` and ``OAuthClientError`` in ``codetether/accounts/``), so the status a refusal
answers with is decided where the rule is written. Each face turns the error into its own shape
from these fields alone, in one function: REST to problem+json (``problem_from`` in
``codetether/api/edge/errors.py``), the console to a page (``render_error`` in
``codetether/api/console/web.py``), A2A to a JSON-RPC error (``a2a_error`` in
``codetether/api/a2a/errors.py``), MCP to a tool error (``tool_error`` in
``codetether/api/mcp/server.py``).
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
