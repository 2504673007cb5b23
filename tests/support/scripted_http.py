"""The machinery shared by the scripted provider servers in this package.

A scripted server is a real HTTP server (Starlette on uvicorn, in its own thread and event loop)
bound to 127.0.0.1 on a free port. A test queues the replies it wants, in order; each request pops
one. Every request is recorded: its JSON body, headers, when it arrived, and for a streamed reply
whether it was finished or the client went away first (and when). Times are ``time.monotonic()``,
so tests can compare them with their own clock readings.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette


@dataclass
class Reply:
    """One scripted answer.

    kind: ``text`` (stream ``text`` in ``chunks`` pieces), ``tool`` (call ``tool_name`` with
    ``arguments``; ``ask_user`` with ``{"question": question}`` by default), ``error`` (answer
    HTTP ``status`` with ``message``). ``delay`` is the pause
    before every streamed piece: a large ``chunks`` with a delay holds the stream open.
    """

    kind: str
    text: str = ""
    question: str = ""
    call_id: str = ""
    tool_name: str = "ask_user"
    arguments: dict[str, Any] | None = None
    status: int = 200
    message: str = ""
    chunks: int = 3
    delay: float = 0.0
    # Further calls in the same answer (parallel tool calls), as (name, arguments).
    more_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@dataclass
class Recorded:
    """What the server saw of one request."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    received_at: float
    reply: Reply | None = None
    finished_at: float | None = None
    disconnected_at: float | None = None


NO_REPLY_STATUS = 400
NO_REPLY_MESSAGE = "scripted server: no reply queued for this request"


@dataclass
class ScriptedServer:
    """Base class: subclasses build the Starlette app with :meth:`build_app`."""

    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Recorded] = field(default_factory=list)
    _script: deque = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- script ---------------------------------------------------------------------------

    def reply_text(self, text: str, *, chunks: int = 3, delay: float = 0.0) -> "ScriptedServer":
        return self._push(Reply(kind="text", text=text, chunks=chunks, delay=delay))

    def reply_ask_user(self, question: str, *, call_id: str = "", text: str = "") -> "ScriptedServer":
        return self._push(Reply(kind="tool", question=question, call_id=call_id, text=text))

    def reply_tool_call(self, name: str, arguments: dict[str, Any], *, call_id: str = "") -> "ScriptedServer":
        """A call of any tool, e.g. one the agent was not offered."""
        return self._push(Reply(kind="tool", tool_name=name, arguments=arguments, call_id=call_id))

    def reply_tool_calls(self, calls: list[tuple[str, dict[str, Any]]]) -> "ScriptedServer":
        """One answer that calls several tools at once (OpenAI-compatible server only)."""
        (name, arguments), *more = calls
        return self._push(Reply(kind="tool", tool_name=name, arguments=arguments, more_calls=more))

    def reply_error(self, status: int, message: str = "") -> "ScriptedServer":
        return self._push(Reply(kind="error", status=status, message=message or f"scripted error {status}"))

    def reply_slow(self, text: str = "still thinking", *, chunks: int = 600, delay: float = 0.1) -> "ScriptedServer":
        """A stream that stays open for ``chunks * delay`` seconds unless the client leaves."""
        return self._push(Reply(kind="text", text=text, chunks=chunks, delay=delay))

    def _push(self, reply: Reply) -> "ScriptedServer":
        with self._lock:
            self._script.append(reply)
        return self

    def _pop(self) -> Reply | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._script)

    def record(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> Recorded:
        rec = Recorded(path=path, body=body, headers=headers, received_at=time.monotonic())
        rec.reply = self._pop()
        with self._lock:
            self.requests.append(rec)
        return rec

    # ---- waiting (from the test's event loop) ---------------------------------------------

    async def wait_for(self, predicate, timeout: float = 30.0, what: str = "condition") -> None:
        """Polls ``predicate()`` (which reads this server's records) until it holds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() > deadline:
                raise AssertionError(f"scripted server: timed out waiting for {what}; saw {self.requests!r}")
            await asyncio.sleep(0.01)

    async def wait_requests(self, n: int, timeout: float = 30.0) -> list[Recorded]:
        await self.wait_for(lambda: len(self.requests) >= n, timeout, f"{n} request(s)")
        return list(self.requests)

    # ---- lifecycle ------------------------------------------------------------------------

    def build_app(self) -> Starlette:  # pragma: no cover - abstract
        raise NotImplementedError

    def start(self) -> "ScriptedServer":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        self._sock = sock
        config = uvicorn.Config(
            self.build_app(), log_level="warning", access_log=False, lifespan="off", http="h11", loop="asyncio"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("scripted server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        # Streams still held open would delay a graceful exit; do not wait for them.
        self._server.force_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> "ScriptedServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def tool_arguments(reply: Reply) -> dict[str, Any]:
    return reply.arguments if reply.arguments is not None else {"question": reply.question}


def split_text(text: str, chunks: int) -> list[str]:
    """Cuts ``text`` into ``chunks`` pieces (some may be empty) that join back to it."""
    chunks = max(1, chunks)
    size = max(1, -(-len(text) // chunks)) if text else 1
    pieces = [text[i * size : (i + 1) * size] for i in range(chunks)]
    if "".join(pieces) != text:
        pieces[-1] += text[len("".join(pieces)) :]
    return pieces


async def stream_with_record(rec: Recorded, request, frames) -> Any:
    """Yields SSE frames from ``frames`` (an iterable of ``(delay, bytes)``), recording whether
    the client stayed until the end or disconnected first."""
    try:
        for delay, frame in frames:
            if delay:
                await asyncio.sleep(delay)
            if await request.is_disconnected():
                rec.disconnected_at = time.monotonic()
                return
            yield frame
        rec.finished_at = time.monotonic()
    finally:
        if rec.finished_at is None and rec.disconnected_at is None:
            # Cancelled by Starlette because the client went away (or the server is stopping).
            rec.disconnected_at = time.monotonic()
