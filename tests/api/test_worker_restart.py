"""A task parked in needs_input survives its worker: stop the worker, start a new one (empty
workflow cache, so the workflow is replayed from history), reply, and the task resumes."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import running_stack, wait_status
from codetether.worker import build_worker

TERMINAL = {"completed", "failed", "cancelled"}


async def test_waiting_task_survives_worker_restart(settings, temporal_env, db, user):
    async with running_stack(settings, temporal_env.client, db, worker=False) as stack:
        http = stack.http
        async with httpx.AsyncClient() as provider_http:
            first = build_worker(settings, temporal_env.client, db, provider_http)
            first_run = asyncio.create_task(first.run())
            r = await http.post(
                "/v1/automation/tasks",
                json={"title": "Survive", "prompt": "Restart me\nASK: Still there?"},
                headers=user.headers,
            )
            assert r.status_code == 201, r.text
            task_id = r.json()["task_id"]
            waiting = await wait_status(http, task_id, user.headers, {"needs_input"} | TERMINAL)
            assert waiting["status"] == "needs_input"
            await first.shutdown()
            await first_run

            # No worker: the task stays parked and readable.
            parked = await http.get(f"/v1/automation/tasks/{task_id}", headers=user.headers)
            assert parked.json()["status"] == "needs_input"

            second = build_worker(settings, temporal_env.client, db, provider_http)
            second_run = asyncio.create_task(second.run())
            try:
                r = await http.post(
                    f"/v1/automation/tasks/{task_id}/input",
                    json={"message": "Yes", "required_action_id": waiting["required_action"]["id"]},
                    headers=user.headers,
                )
                assert r.status_code == 200, r.text
                done = await wait_status(http, task_id, user.headers, TERMINAL)
                assert done["status"] == "completed"
                assert done["result"].startswith("Thanks, noted: Yes.")
                events = (await http.get(f"/v1/automation/tasks/{task_id}/events", headers=user.headers)).json()["data"]
                types = [e["event"] for e in events if e["event"] != "task.progress"]
                assert types == ["task.created", "task.started", "task.needs_input", "task.message", "task.completed"]
            finally:
                await second.shutdown()
                await second_run
