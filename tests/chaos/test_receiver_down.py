"""A webhook receiver that is down for a while (connection refused) and then comes back: every
event reaches it afterwards, once per destination, after failed attempts on the durable schedule.

The cluster runs with a fast retry schedule (1 s between attempts) so "a while" fits in a test.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from tests.chaos.conftest import assert_no_loss_no_duplicates, wait_task
from tests.production.procs import free_port
from tests.support.receiver import Receiver

pytestmark = pytest.mark.chaos

TASKS = 4
DOWN_FOR = 6.0


async def test_receiver_down_then_up_gets_every_event(cluster, make_user, db):
    await asyncio.to_thread(cluster.start_temporal)
    _api, port = await asyncio.to_thread(cluster.start_api)
    cluster.start_worker()
    user = await make_user()
    h = user.headers
    hook_port = free_port()
    base = f"http://127.0.0.1:{hook_port}"

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        r = await http.post("/v1/webhooks", json={"url": f"{base}/subscription", "events": ["task.completed"]}, headers=h)
        assert r.status_code == 201, r.text
        webhook_id = r.json()["id"]

        # The receiver is down: nothing listens on its port while the tasks run and finish.
        loop = asyncio.get_running_loop()
        down_since = loop.time()
        ids = []
        for i in range(TASKS):
            r = await http.post(
                "/v1/automation/tasks",
                json={"title": f"Notify {i}", "description": "hello", "webhook_url": f"{base}/task"},
                headers=h,
            )
            assert r.status_code == 201, r.text
            ids.append(r.json()["task_id"])
        for task_id in ids:
            done = await wait_task(http, task_id, h, lambda t: t["status"] in ("completed", "failed"), timeout=60)
            assert done["status"] == "completed", done

        # Deliveries fail meanwhile and stay pending for their next attempt.
        deadline = loop.time() + 30
        while True:
            data = (await http.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=h)).json()["data"]
            if len(data) == TASKS and all(d["attempt_count"] >= 2 for d in data):
                break
            assert loop.time() < deadline, data
            await asyncio.sleep(0.2)
        assert all(d["status"] == "pending" and d["last_status_code"] is None for d in data), data
        await asyncio.sleep(max(0.0, DOWN_FOR - (loop.time() - down_since)))

        async with Receiver(port=hook_port) as receiver:
            await receiver.wait_for(2 * TASKS, timeout=60)
            # Let any stray retry that was already under way land, then count.
            data = await _settled(http, webhook_id, h)
            await asyncio.sleep(1.5)
            got = list(receiver.requests)

    per_destination = Counter((r.path, r.headers["webhook-id"]) for r in got)
    assert set(p for p, _ in per_destination) == {"/subscription", "/task"}
    assert len(per_destination) == 2 * TASKS, per_destination
    assert max(per_destination.values()) == 1, f"duplicate deliveries: {per_destination}"
    assert all(r.headers["x-codetether-event"] == "task.completed" for r in got)
    delivered_tasks = {r.headers["webhook-id"] for r in got}
    assert len(delivered_tasks) == TASKS
    assert all(d["status"] == "delivered" and d["attempt_count"] >= 2 for d in data), data
    await assert_no_loss_no_duplicates(db, user.user_id, TASKS)
    print(f"chaos webhook figures: events={TASKS} destinations=2 delivered={len(per_destination)} "
          f"duplicates=0 attempts={sum(d['attempt_count'] for d in data)} (subscription)")


async def _settled(http: httpx.AsyncClient, webhook_id: str, h: dict) -> list[dict]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        data = (await http.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=h)).json()["data"]
        if data and all(d["status"] == "delivered" for d in data):
            return data
        assert loop.time() < deadline, data
        await asyncio.sleep(0.2)
