"""Finding 9, streams: no per-user cap on concurrent long-polls and SSE streams.

A stream on a ``needs_input`` task can last days. One user may now hold at most
``CODETETHER_MAX_OPEN_STREAMS_PER_USER`` (20) ``?wait=`` long-polls and SSE streams at once per API
process; the next gets ``429 too_many_open_streams`` with ``Retry-After``, and a closed one frees
its slot. Runs on a real uvicorn server (SSE needs one).
"""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import wait_status
from tests.support.live_api import LiveServer

SSE = {"Accept": "text/event-stream"}


async def test_stream_21_is_refused_and_a_closed_one_frees_its_slot(stack, make_user):
    user = await make_user()
    other = await make_user()
    r = await stack.http.post("/v1/automation/tasks", json={"title": "Waits", "prompt": "ASK: which colour?"},
                              headers=user.headers)
    assert r.status_code == 201, r.text
    task_id = r.json()["task_id"]
    await wait_status(stack.http, task_id, user.headers, {"needs_input"})
    events = f"/v1/automation/tasks/{task_id}/events"
    # A running task: ?wait= on it holds the request for the full wait.
    r = await stack.http.post("/v1/automation/tasks", json={"title": "Works", "prompt": "SLEEP: 60"},
                              headers=user.headers)
    busy = r.json()["task_id"]

    async with LiveServer(stack.app) as server:
        client = httpx.AsyncClient(base_url=server.url, timeout=30, limits=httpx.Limits(max_connections=50))
        streams: list[httpx.Response] = []

        async def open_stream(path: str, headers: dict) -> httpx.Response:
            resp = await client.send(client.build_request("GET", path, headers={**headers, **SSE}), stream=True)
            streams.append(resp)
            return resp

        try:
            for _ in range(19):
                assert (await open_stream(events, user.headers)).status_code == 200
            # A long-poll counts too: the 20th slot.
            poll = asyncio.create_task(client.get(f"/v1/automation/tasks/{busy}", params={"wait": 4},
                                                  headers=user.headers))
            await asyncio.sleep(1)
            extra = await open_stream(events, user.headers)
            assert extra.status_code == 429
            await extra.aread()
            assert extra.json()["code"] == "too_many_open_streams"
            assert int(extra.headers["retry-after"]) >= 1
            extra_poll = await client.get(f"/v1/automation/tasks/{busy}", params={"wait": 1}, headers=user.headers)
            assert extra_poll.status_code == 429
            # Plain reads are not limited, nor are other users.
            assert (await client.get(f"/v1/automation/tasks/{task_id}", headers=user.headers)).status_code == 200
            r = await client.post("/v1/automation/tasks", json={"title": "x", "prompt": "ASK: q"}, headers=other.headers)
            assert (await open_stream(f"/v1/automation/tasks/{r.json()['task_id']}/events", other.headers)).status_code == 200

            assert (await poll).status_code == 200  # the long-poll ends after its 4 s, freeing a slot
            assert (await open_stream(events, user.headers)).status_code == 200
            assert (await open_stream(events, user.headers)).status_code == 429
            await streams[0].aclose()  # a closed stream frees its slot
            await asyncio.sleep(0.5)
            assert (await open_stream(events, user.headers)).status_code == 200
        finally:
            for resp in streams:
                await resp.aclose()
            await client.aclose()
