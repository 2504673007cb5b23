"""Business refusals of the shared task services, independent of any protocol.

:class:`ServiceError` carries an HTTP-like status, a stable snake_case ``code`` and field errors.
Each face maps it to its own error shape: REST to problem+json (``api/errors.py``), A2A to a
JSON-RPC error (``api/a2a/handler.py``), MCP to a tool error (``api/mcp/server.py``).
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    def __init__(self, status: int, code: str, message: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
