"""kill -9 of an API process in the middle of create requests, then the client retries every
request with its ``Idempotency-Key`` on the other API process: exactly one task per key, all of
them complete.

To be sure the requests are really mid-flight when the process dies, Temporal is frozen
(SIGSTOP) while they arrive: each request has committed its key's claim together with its task
row, and its workflow start hangs. The API is killed while Temporal is still frozen, then Temporal
thaws: starts already written to the socket may still reach the server and some not; the retries
must cope with both.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid

import httpx
import pytest
from sqlalchemy import select

from codetether.core.models import IdempotencyRecord
from tests.chaos.conftest import assert_no_loss_no_duplicates, wait_task

pytestmark = pytest.mark.chaos

IN_FLIGHT = 6
# Past the idempotency lock of a crashed holder (8 s in the chaos cluster) plus generous slack.
RETRY_DEADLINE = 60


async def claimed_keys(db, keys: list[str]) -> dict[str, str]:
    async with db.session() as s:
        rows = (await s.execute(select(IdempotencyRecord.key, IdempotencyRecord.state).where(IdempotencyRecord.key.in_(keys)))).all()
    return dict(rows)


async def test_api_killed_mid_request_idempotent_retry_makes_one_task(cluster, make_user, db):
    await asyncio.to_thread(cluster.start_temporal)
    api1, port1 = await asyncio.to_thread(cluster.start_api)
    _api2, port2 = await asyncio.to_thread(cluster.start_api)
    cluster.start_worker()
    user = await make_user()
    h = user.headers
    body = lambda i: {"title": f"Exactly once {i}", "description": "hello"}  # noqa: E731

    first = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port1}", timeout=60)
    second = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port2}", timeout=30)
    temporal_pid = cluster.temporal.pid
    try:
        # Both APIs hold a Temporal connection before the server freezes.
        for http in (first, second):
            assert (await http.get("/readyz")).status_code == 200
        warm_key = str(uuid.uuid4())
        r = await first.post("/v1/automation/tasks", json=body("warm"), headers={**h, "Idempotency-Key": warm_key})
        assert r.status_code == 201, r.text

        keys = [str(uuid.uuid4()) for _ in range(IN_FLIGHT)]
        os.kill(temporal_pid, signal.SIGSTOP)
        try:
            pending = [
                asyncio.create_task(first.post("/v1/automation/tasks", json=body(i), headers={**h, "Idempotency-Key": k}))
                for i, k in enumerate(keys)
            ]
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while len(await claimed_keys(db, keys)) < IN_FLIGHT:
                assert loop.time() < deadline, "the requests never claimed their keys"
                await asyncio.sleep(0.05)
            # Each claim was committed with its task row ("created"); the workflow starts hang.
            assert set((await claimed_keys(db, keys)).values()) == {"created"}
            # Killed while Temporal is still frozen, so no request can finish first; a start
            # already written to the socket may still be read by the server once it thaws.
            await asyncio.to_thread(api1.kill9)
        finally:
            os.kill(temporal_pid, signal.SIGCONT)
        results = await asyncio.gather(*pending, return_exceptions=True)
        # Cut mid-flight, except that a request may have finished just before the kill when its
        # start still got through as Temporal froze (seen on a loaded machine): it must then be
        # replayed as the same task below.
        assert all(isinstance(r, httpx.TransportError) or (isinstance(r, httpx.Response) and r.status_code == 201)
                   for r in results), results
        finished = {keys[i]: r.json()["task_id"] for i, r in enumerate(results) if isinstance(r, httpx.Response)}
        assert len(finished) < IN_FLIGHT, results

        # The client's retries, on the surviving API, with the same keys and bodies.
        task_ids: dict[str, str] = {}
        replays = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RETRY_DEADLINE
        for i, key in enumerate([warm_key, *keys]):
            payload = body("warm") if key == warm_key else body(i - 1)
            while True:
                r = await second.post("/v1/automation/tasks", json=payload, headers={**h, "Idempotency-Key": key})
                if r.status_code != 409:
                    break
                assert r.json()["code"] == "idempotency_key_in_use"
                assert loop.time() < deadline, "a crashed request's key was never released"
                await asyncio.sleep(float(r.headers.get("retry-after", "1")))
            assert r.status_code == 201, r.text
            task_ids[key] = r.json()["task_id"]
            replays[key] = r.headers.get("idempotent-replayed") == "true"
        assert replays[warm_key] is True
        assert all(task_ids[k] == task_id and replays[k] for k, task_id in finished.items())
        assert len(set(task_ids.values())) == IN_FLIGHT + 1

        for task_id in task_ids.values():
            done = await wait_task(second, task_id, h, lambda t: t["status"] in ("completed", "failed"), timeout=90)
            assert done["status"] == "completed", done

        # Once more with every key: all replays of the same tasks now.
        for i, key in enumerate(keys):
            r = await second.post("/v1/automation/tasks", json=body(i), headers={**h, "Idempotency-Key": key})
            assert r.status_code == 201 and r.headers.get("idempotent-replayed") == "true"
            assert r.json()["task_id"] == task_ids[key]
    finally:
        await first.aclose()
        await second.aclose()

    await assert_no_loss_no_duplicates(db, user.user_id, IN_FLIGHT + 1)
