"""How ``codetether api`` (and so ``codetether dev``, which runs it) serves the app with uvicorn.

Header size. uvicorn's two HTTP/1.1 parsers differ: h11 buffers at most
``h11_max_incomplete_event_size`` bytes (16 KiB by default) of an unfinished request head and
then answers a bare ``400``; httptools (llhttp, what ``uvicorn[standard]`` picks, about twice as
fast here) has no limit at all, so a 100 MB header was read and held in full. The protocol below
keeps httptools and counts the bytes of each request head as they arrive: past
``CODETETHER_MAX_HEADER_BYTES`` (16 KiB) it answers ``431 Request Header Fields Too Large`` (a
problem+json body) and closes the connection, so at most one read buffer beyond the limit is
ever held. Without httptools, h11 is used with the same limit (and its own ``400``).

Proxies. ``X-Forwarded-For``/``-Proto`` are applied by the app itself
(:func:`codetether.api.app.create_app` installs uvicorn's ``ProxyHeadersMiddleware`` with
``CODETETHER_TRUSTED_PROXIES``), so uvicorn's own handling, which trusts only 127.0.0.1, is off.
"""

from __future__ import annotations

import json
from typing import Any

import uvicorn

from codetether.core.config import Settings

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - uvicorn without the [standard] extra
    HttpToolsProtocol = None  # type: ignore[assignment,misc]


def _431(limit: int) -> bytes:
    body = json.dumps({
        "type": "https://codetether.dev/problems/request-header-too-large",
        "title": "Request Header Fields Too Large",
        "status": 431,
        "detail": f"the request line and headers are larger than {limit} bytes",
        "code": "request_header_too_large",
        "request_id": None,
    }).encode()
    return (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"content-type: application/problem+json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n\r\n" + body
    )


if HttpToolsProtocol is not None:

    class HeaderLimitedHttpToolsProtocol(HttpToolsProtocol):  # type: ignore[misc,valid-type]
        """httptools with a cap on the size of each request head (request line + headers)."""

        max_header_bytes = 16 * 1024

        def connection_made(self, transport) -> None:  # type: ignore[override]
            self._in_head = True
            self._head_bytes = 0
            self._heads_done = 0
            self._refused = False
            self._too_large = False
            super().connection_made(transport)

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            heads_before = self._heads_done
            super().data_received(data)
            if self._in_head and not self._refused and not self.transport.is_closing():
                if self._heads_done != heads_before:
                    # A head or a whole request ended in this chunk and the next head began in
                    # it: count afresh from the next chunk (this one held other bytes too).
                    self._head_bytes = 0
                    return
                # The whole chunk was part of one unfinished request head.
                self._head_bytes += len(data)
                if self._head_bytes > self.max_header_bytes:
                    self._refuse()

        def _refuse(self) -> None:
            self._refused = True
            self.transport.write(_431(self.max_header_bytes))
            self.transport.close()

        def send_400_response(self, msg: str) -> None:
            if self._too_large:
                self._refuse()
            else:
                super().send_400_response(msg)

        def on_message_begin(self) -> None:
            self._in_head = True
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._head_bytes = 0
            self._heads_done += 1
            # A head that arrived within one read is measured exactly here.
            size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
            if size > self.max_header_bytes:
                self._too_large = True
                # Stops the parser; uvicorn then calls send_400_response, which answers 431.
                raise ValueError("request head too large")
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._in_head = True
            self._head_bytes = 0
            self._heads_done += 1  # a boundary as well: the chunk that ends a body is no head
            super().on_message_complete()


def http_protocol(max_header_bytes: int) -> Any:
    """The uvicorn ``http`` option enforcing ``max_header_bytes``."""
    if HttpToolsProtocol is None:  # pragma: no cover
        return "h11"
    return type("CodeTetherHttpProtocol", (HeaderLimitedHttpToolsProtocol,), {"max_header_bytes": max_header_bytes})


def uvicorn_config(app: Any, settings: Settings, *, host: str | None = None, port: int | None = None,
                   **overrides: Any) -> uvicorn.Config:
    options: dict[str, Any] = dict(
        host=host or settings.api_host,
        port=port if port is not None else settings.api_port,
        http=http_protocol(settings.max_header_bytes),
        h11_max_incomplete_event_size=settings.max_header_bytes,
        proxy_headers=False,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    options.update(overrides)
    return uvicorn.Config(app, **options)


def serve(app: Any, settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    uvicorn.Server(uvicorn_config(app, settings, host=host, port=port)).run()
