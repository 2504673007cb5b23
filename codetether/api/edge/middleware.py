"""What the API's own ASGI middlewares share: HTTP requests only, request headers, response headers.

:class:`HTTPMiddleware` passes every non-HTTP scope (lifespan, websockets) and every request its
``applies`` declines straight to the app, so a subclass writes only ``handle``. Used by the request
id (``codetether/api/app.py``), the query-key deprecation headers (``codetether/api/auth_extensions.py``),
and ``errors``, ``idempotency_middleware``, ``metrics`` and ``ratelimit`` in this package.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HTTPMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def applies(self, scope: Scope) -> bool:
        """Whether this HTTP request concerns the middleware at all (all of them by default)."""
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.applies(scope):
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


def request_header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of the request header ``name`` (lower case, as ASGI spells names)."""
    for key, value in scope.get("headers", []):
        if key == name:
            return value
    return None


def add_response_headers(message: Message, pairs: Iterable[tuple[bytes, bytes]]) -> None:
    """Appends headers to an ``http.response.start`` message."""
    message["headers"] = [*message.get("headers", []), *pairs]


class StartTracker:
    """Wraps ``send`` and remembers whether the response started; after that no other answer fits."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)
