"""kill -9 of the Temporal dev server with its SQLite file, then a restart on the same file: the
API keeps answering reads meanwhile, and afterwards every task (running, waiting for input,
and new ones) completes exactly once; nothing is lost."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.chaos.conftest import assert_no_loss_no_duplicates, wait_task
from tests.production.procs import port_open, wait_until

pytestmark = pytest.mark.chaos


async def test_temporal_killed_and_restarted_on_its_file_loses_nothing(cluster, make_user, db):
    await asyncio.to_thread(cluster.start_temporal)
    _api, port = await asyncio.to_thread(cluster.start_api)
    cluster.start_worker()
    user = await make_user()
    h = user.headers

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:

        async def create(title: str, description: str) -> str:
            r = await http.post("/v1/automation/tasks", json={"title": title, "description": description}, headers=h)
            assert r.status_code == 201, r.text
            return r.json()["task_id"]

        sleepers = [await create(f"Sleeper {i}", "SLEEP: 4") for i in range(3)]
        asker = await create("Asker", "Decide\nASK: Proceed?")
        for task_id in sleepers:
            await wait_task(http, task_id, h, lambda t: t["status"] == "running", timeout=60, what="running")
        waiting = await wait_task(http, asker, h, lambda t: t["status"] == "needs_input", timeout=60, what="needs_input")

        await asyncio.to_thread(cluster.temporal.kill9)
        assert not port_open(cluster.temporal_port)

        # Reads come from the database: the API still answers while Temporal is gone.
        r = await http.get(f"/v1/automation/tasks/{asker}", headers=h)
        assert r.status_code == 200 and r.json()["status"] == "needs_input"

        await asyncio.to_thread(cluster.start_temporal)
        assert cluster.temporal_db.is_file()

        # The worker and the API reconnect on their own; the question is still pending.
        def answer_accepted() -> bool:
            r = httpx.post(
                f"http://127.0.0.1:{port}/v1/automation/tasks/{asker}/input",
                json={"message": "yes", "required_action_id": waiting["required_action"]["id"]},
                headers=h, timeout=15,
            )
            return r.status_code in (200, 202)

        await asyncio.to_thread(wait_until, answer_accepted, 60, "input accepted after the restart", None, 1.0)
        late = await create("After the restart", "hello again")

        for task_id in [*sleepers, asker, late]:
            done = await wait_task(http, task_id, h, lambda t: t["status"] in ("completed", "failed", "cancelled"), timeout=90)
            assert done["status"] == "completed", done

    await assert_no_loss_no_duplicates(db, user.user_id, len(sleepers) + 2)
