"""Second probe, L3: the per-user cap on held-open requests missed the console's event stream
(``GET /console/tasks/{id}/stream``) and MCP's server-to-client stream (``GET /mcp``).

Both now take a slot of the same per-user count as REST's SSE streams and ``?wait=`` long-polls:
with a cap of 2, a REST stream and a console stream fill it, a third console stream is 429
``too_many_open_streams``, ``GET /mcp`` is refused the same way, and a closed stream frees its slot.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from codetether.accounts.websessions import create_session
from codetether.api.console.web import SESSION_COOKIE
from tests.conftest import make_settings, wait_status
from tests.support.live_api import LiveServer

SSE = {"Accept": "text/event-stream"}
MCP_GET = {"Accept": "text/event-stream", "MCP-Protocol-Version": "2025-06-18"}


@pytest.fixture
def settings(temporal_address, database_url, tmp_path):
    return make_settings(temporal_address, database_url, tmp_path, max_open_streams_per_user=2)


async def test_console_stream_and_mcp_get_count_toward_the_cap(stack, user):
    r = await stack.http.post("/v1/automation/tasks", json={"title": "Waits", "prompt": "ASK: which colour?"},
                              headers=user.headers)
    assert r.status_code == 201, r.text
    task_id = r.json()["task_id"]
    await wait_status(stack.http, task_id, user.headers, {"needs_input"})
    cookie = {SESSION_COOKIE: await create_session(stack.db, user.user_id, hours=1)}
    rest_stream = f"/v1/automation/tasks/{task_id}/events"
    console_stream = f"/console/tasks/{task_id}/stream"

    async with LiveServer(stack.app, lifespan="on") as server:
        client = httpx.AsyncClient(base_url=server.url, timeout=30, limits=httpx.Limits(max_connections=20))
        held: list[httpx.Response] = []

        async def open_(path: str, headers: dict, cookies: dict | None = None) -> httpx.Response:
            request = client.build_request("GET", path, headers=headers, cookies=cookies)
            resp = await client.send(request, stream=True)
            held.append(resp)
            return resp

        try:
            rest = await open_(rest_stream, {**user.headers, **SSE})
            assert rest.status_code == 200
            assert (await open_(console_stream, SSE, cookie)).status_code == 200
            third = await open_(console_stream, SSE, cookie)
            assert third.status_code == 429
            mcp = await open_("/mcp", {**user.headers, **MCP_GET})
            assert mcp.status_code == 429
            await mcp.aread()
            assert mcp.json()["code"] == "too_many_open_streams"

            await rest.aclose()  # a closed stream frees its slot
            await asyncio.sleep(0.5)
            mcp = await open_("/mcp", {**user.headers, **MCP_GET})
            assert mcp.status_code == 200, mcp.headers
            assert (await open_(console_stream, SSE, cookie)).status_code == 429  # the MCP stream holds it
            await mcp.aclose()
            await asyncio.sleep(0.5)
            assert (await open_(console_stream, SSE, cookie)).status_code == 200
        finally:
            for resp in held:
                await resp.aclose()
            await client.aclose()
