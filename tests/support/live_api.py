"""Serves an ASGI app with uvicorn on a free 127.0.0.1 port inside the test's own event loop.

Streaming responses (SSE) need a real server: httpx's ASGI transport hands a response over only
once the app has finished it. Running uvicorn in the same loop keeps the app's database engine
and Temporal client on the loop they were made on.
"""

from __future__ import annotations

import asyncio
import socket

import uvicorn


class LiveServer:
    def __init__(self, app, *, lifespan: str = "off") -> None:
        self.app = app
        self.port = 0
        # "on" runs the app's lifespan (the MCP session manager lives there).
        self.lifespan = lifespan

    async def __aenter__(self) -> "LiveServer":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._sock = sock
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan=self.lifespan, http="h11", loop="none")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not self._server.started:
            if self._task.done() or loop.time() > deadline:
                raise RuntimeError("live API server did not start")
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc) -> None:
        self._server.should_exit = True
        self._server.force_exit = True
        try:
            await asyncio.wait_for(self._task, 10)
        except (TimeoutError, Exception):  # noqa: BLE001 - shutting down regardless
            self._task.cancel()
        self._sock.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
