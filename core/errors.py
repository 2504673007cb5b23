"""Business refusals raised by the services in ``core/`` and shown by every face.

A :class:`ServiceError` carries the HTTP status, the stable snake_case ``code`` and a message; the
REST face turns it into a problem+json response (``api/errors.py``), the console into a message
on the page. So each rule is written once, in ``core/``.
"""

from __future__ import annotations


class ServiceError(Exception):
    def __init__(self, status: int, code: str, message: str, *, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}

    @property
    def errors(self) -> list[dict[str, str]] | None:
        if self.field is None:
            return None
        return [{"field": self.field, "message": self.message, "type": self.code}]


def not_found(kind: str, ident: str) -> ServiceError:
    return ServiceError(404, f"{kind}_not_found", f"no {kind.replace('_', ' ')} {ident!r}")
