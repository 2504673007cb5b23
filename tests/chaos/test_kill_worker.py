"""kill -9 of a worker process in the middle of agent turns: after a new worker starts, every task
completes, exactly once, and the agent turn was finished by the new worker."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from temporalio.api.enums.v1 import EventType

from tests.chaos.conftest import assert_no_loss_no_duplicates, temporal_client, wait_task

pytestmark = pytest.mark.chaos

TASKS = 3


async def test_worker_killed_mid_agent_tasks_complete_on_new_worker(cluster, make_user, db):
    await asyncio.to_thread(cluster.start_temporal)
    _api, port = await asyncio.to_thread(cluster.start_api)
    first = cluster.start_worker()
    user = await make_user()

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        ids = []
        for i in range(TASKS):
            r = await http.post(
                "/v1/automation/tasks",
                json={"title": f"Long agent {i}", "description": "Work slowly\nSLEEP: 5", "model": "demo"},
                headers=user.headers,
            )
            assert r.status_code == 201, r.text
            ids.append(r.json()["task_id"])
        # Mid-agent: the agent has reported progress from inside its turn on the first worker.
        for task_id in ids:
            await wait_task(
                http, task_id, user.headers,
                lambda t: t["status"] == "running" and (t["progress"] or {}).get("message", "").startswith("working"),
                timeout=60, what="running with progress",
            )
        await asyncio.to_thread(first.kill9)
        assert first.popen.returncode == -9

        second = cluster.start_worker()
        for task_id in ids:
            done = await wait_task(http, task_id, user.headers, lambda t: t["status"] in ("completed", "failed"), timeout=90)
            assert done["status"] == "completed", done
            assert done["result"].startswith('Demo result for "Long agent')

    # The turn that finished ran on the new worker, as a retry of the one that died.
    client = await temporal_client(cluster)
    for task_id in ids:
        scheduled: dict[int, str] = {}
        agent_turns = []
        async for e in client.get_workflow_handle(task_id).fetch_history_events():
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                scheduled[e.event_id] = e.activity_task_scheduled_event_attributes.activity_type.name
            elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                a = e.activity_task_started_event_attributes
                # run_agent: the single-turn path; model_turn: a turn of the tool loop.
                if scheduled.get(a.scheduled_event_id) in ("run_agent", "model_turn"):
                    agent_turns.append(a)
        assert len(agent_turns) == 1, agent_turns
        (turn,) = agent_turns
        assert turn.attempt >= 2 and turn.identity.startswith(f"{second.pid}@"), (turn.attempt, turn.identity)

    await assert_no_loss_no_duplicates(db, user.user_id, TASKS)
