"""A real HTTP webhook receiver on 127.0.0.1 for tests and benchmarks.

A minimal HTTP/1.1 server on asyncio streams: it records every request (headers and the exact
body bytes) and answers from a script of responses (e.g. 500, 503, then 200), so tests can see
exactly what a receiver on the other side of the network sees.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Self


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)
    at_monotonic: float = field(default_factory=time.perf_counter)


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"


_REASONS = {200: "OK", 204: "No Content", 301: "Moved Permanently", 302: "Found", 410: "Gone",
            429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


class Receiver:
    """``async with Receiver() as r:`` → ``r.url``; ``r.script([...])`` queues replies (then 200)."""

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self.requests: list[Received] = []
        self._script: list[Reply] = []
        self._default = Reply()
        # Optional: decides each reply from the request (e.g. by its webhook-id).
        self.respond = None
        self._cond = asyncio.Condition()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def script(self, replies: list[Reply | int], default: Reply | int | None = None) -> None:
        self._script = [r if isinstance(r, Reply) else Reply(r) for r in replies]
        if default is not None:
            self._default = default if isinstance(default, Reply) else Reply(default)

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self._port)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            # Kept-alive client connections would keep their handlers waiting forever.
            for w in list(self._writers):
                w.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def wait_for(self, count: int, timeout: float = 60.0, predicate=None) -> list[Received]:
        """Waits until ``count`` requests (matching ``predicate``) have arrived."""

        def matching() -> list[Received]:
            return [r for r in self.requests if predicate is None or predicate(r)]

        async with self._cond:
            await asyncio.wait_for(self._cond.wait_for(lambda: len(matching()) >= count), timeout)
        return matching()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, v = h.decode("latin-1").split(":", 1)
                    headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                req = Received(method, path, headers, body)
                if self.respond is not None:
                    reply = self.respond(req)
                    reply = reply if isinstance(reply, Reply) else Reply(reply)
                else:
                    reply = self._script.pop(0) if self._script else self._default
                async with self._cond:
                    self.requests.append(req)
                    self._cond.notify_all()
                out_headers = {"Content-Length": str(len(reply.body)), "Content-Type": "text/plain"}
                out_headers.update(reply.headers)
                head = f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}\r\n"
                head += "".join(f"{k}: {v}\r\n" for k, v in out_headers.items()) + "\r\n"
                writer.write(head.encode("latin-1") + reply.body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()
