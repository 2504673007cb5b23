"""The per-task event log: ``GET /tasks/{id}/events`` as JSON and as an SSE stream (live, on a
real uvicorn server), resuming with ``Last-Event-ID``, progress events, follow-up runs."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from sqlalchemy import select

from codetether.core.models import TaskEvent
from tests.conftest import wait_status
from tests.support.live_api import LiveServer
from tests.support.sse import iter_sse, parse_sse_text

TERMINAL = {"completed", "failed", "cancelled"}
SSE = {"Accept": "text/event-stream"}


async def create(http, headers, prompt: str, **extra) -> dict:
    r = await http.post("/v1/automation/tasks", json={"title": "Events", "prompt": prompt, **extra}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


async def stored_events(db, task_id: str) -> list[TaskEvent]:
    async with db.session() as s:
        return list((await s.execute(select(TaskEvent).where(TaskEvent.task_id == task_id).order_by(TaskEvent.seq))).scalars())


def assert_lifecycle(types: list[str]) -> None:
    assert types[0] == "task.created"
    assert types[1] == "task.started"
    assert types[-1] == "task.completed"
    assert set(types[2:-1]) <= {"task.progress"}, types


async def test_json_log_in_order_with_after(stack, user, make_user):
    http = stack.http
    task = await create(http, user.headers, "Log me", metadata={"ref": 7})
    await wait_status(http, task["task_id"], user.headers, TERMINAL)
    r = await http.get(f"/v1/automation/tasks/{task['task_id']}/events", headers=user.headers)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    log = r.json()
    assert log["has_more"] is False
    events = log["data"]
    assert_lifecycle([e["event"] for e in events])
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert len({e["id"] for e in events}) == len(events)
    for e in events:
        assert e["id"].startswith("evt_") and e["task_id"] == task["task_id"] and e["run_id"] == task["run_id"]
        assert e["metadata"] == {"ref": 7} and e["data"]["task_id"] == task["task_id"]
    assert events[-1]["status"] == "completed" and events[-1]["result"] == events[-1]["data"]["result"]

    # Each item is the stored body, with only the seq added.
    rows = await stored_events(stack.db, task["task_id"])
    assert [json.loads(row.body) for row in rows] == [{k: v for k, v in e.items() if k != "seq"} for e in events]

    r = await http.get(f"/v1/automation/tasks/{task['task_id']}/events", params={"after": 2}, headers=user.headers)
    assert [e["seq"] for e in r.json()["data"]] == [e["seq"] for e in events[2:]]
    r = await http.get(f"/v1/automation/tasks/{task['task_id']}/events", params={"after": 0, "limit": 1}, headers=user.headers)
    assert [e["seq"] for e in r.json()["data"]] == [1] and r.json()["has_more"] is True

    stranger = await make_user()
    r = await http.get(f"/v1/automation/tasks/{task['task_id']}/events", headers=stranger.headers)
    assert r.status_code == 404 and r.json()["code"] == "task_not_found"
    r = await http.get(f"/v1/automation/tasks/{task['task_id']}/events", headers={**stranger.headers, **SSE})
    assert r.status_code == 404


async def test_sse_replay_of_finished_task_is_the_stored_log(stack, user):
    http = stack.http
    task = await create(http, user.headers, "Stream me")
    await wait_status(http, task["task_id"], user.headers, TERMINAL)
    rows = await stored_events(stack.db, task["task_id"])

    r = await http.get(f"/v1/automation/tasks/{task['task_id']}/events", headers={**user.headers, **SSE})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = parse_sse_text(r.text)
    # id = seq, event = type, data = the stored compact body byte for byte; the stream ended.
    assert [(e.id, e.event, e.data) for e in events] == [(str(row.seq), row.type, row.body) for row in rows]
    assert_lifecycle([e.event for e in events])

    # Resuming from the middle replays exactly the rest.
    middle = rows[len(rows) // 2].seq
    r = await http.get(
        f"/v1/automation/tasks/{task['task_id']}/events", headers={**user.headers, **SSE, "Last-Event-ID": str(middle)}
    )
    assert [int(e.id) for e in parse_sse_text(r.text)] == [row.seq for row in rows if row.seq > middle]
    # Last-Event-ID wins over ?after (a reconnecting EventSource keeps its original URL).
    r = await http.get(
        f"/v1/automation/tasks/{task['task_id']}/events",
        params={"after": 1},
        headers={**user.headers, **SSE, "Last-Event-ID": str(middle)},
    )
    assert [int(e.id) for e in parse_sse_text(r.text)] == [row.seq for row in rows if row.seq > middle]

    # After the terminal event there is nothing more: 204 tells EventSource to stop reconnecting.
    r = await http.get(
        f"/v1/automation/tasks/{task['task_id']}/events",
        headers={**user.headers, **SSE, "Last-Event-ID": str(rows[-1].seq)},
    )
    assert r.status_code == 204
    r = await http.get(
        f"/v1/automation/tasks/{task['task_id']}/events", headers={**user.headers, **SSE, "Last-Event-ID": "abc"}
    )
    assert r.status_code == 400 and r.json()["code"] == "invalid_last_event_id"


@pytest.mark.postgres
async def test_live_stream_follows_the_task_and_resumes_after_disconnect(stack, user):
    async with LiveServer(stack.app) as server, httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        task = await create(stack.http, user.headers, "Live\nSLEEP: 2")
        url = f"/v1/automation/tasks/{task['task_id']}/events"

        # Follow it live from the start, then drop the connection after two events.
        seen = []
        async with client.stream("GET", url, headers={**user.headers, **SSE}) as r:
            assert r.status_code == 200
            async for event in iter_sse(r):
                seen.append(event)
                if len(seen) == 2:
                    break
        assert [e.event for e in seen] == ["task.created", "task.started"]
        assert seen[0].retry is not None

        # Reconnect with Last-Event-ID while the task still runs; the stream ends after completion.
        resumed = []
        async with client.stream("GET", url, headers={**user.headers, **SSE, "Last-Event-ID": seen[-1].id}) as r:
            assert r.status_code == 200
            async for event in iter_sse(r):
                resumed.append(event)
        rows = await stored_events(stack.db, task["task_id"])
        assert [(e.id, e.event, e.data) for e in seen + resumed] == [(str(row.seq), row.type, row.body) for row in rows]
        assert_lifecycle([e.event for e in seen + resumed])
        assert "task.progress" in [e.event for e in resumed]


async def test_progress_is_on_the_task_and_in_the_log(stack, user):
    http = stack.http
    task = await create(http, user.headers, "Progress\nSLEEP: 4")
    async with LiveServer(stack.app) as server, httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        url = f"/v1/automation/tasks/{task['task_id']}/events"
        progress = None
        async with client.stream("GET", url, headers={**user.headers, **SSE}) as r:
            async for event in iter_sse(r):
                if event.event == "task.progress":
                    progress = json.loads(event.data)
                    break
    assert progress is not None
    assert progress["status"] == "running"
    assert progress["data"]["progress"]["message"] == "working for 4 s"
    assert progress["data"]["progress"]["updated_at"].endswith("Z")
    # While the agent still works, the task object shows the same progress.
    current = (await http.get(f"/v1/automation/tasks/{task['task_id']}", headers=user.headers)).json()
    if current["status"] == "running":
        assert current["progress"]["message"] == "working for 4 s"
    done = await wait_status(http, task["task_id"], user.headers, TERMINAL)
    assert done["progress"] is None


async def test_follow_up_run_events_continue_the_log(stack, user):
    http = stack.http
    task = await create(http, user.headers, "First run")
    await wait_status(http, task["task_id"], user.headers, TERMINAL)
    first_log = (await http.get(f"/v1/automation/tasks/{task['task_id']}/events", headers=user.headers)).json()["data"]
    last_seq = first_log[-1]["seq"]

    r = await http.post(f"/v1/automation/tasks/{task['task_id']}/messages", json={"message": "Again"}, headers=user.headers)
    assert r.json()["delivered_as"] == "follow_up"
    new_run = r.json()["run_id"]
    # A stream opened after the first run's end follows the follow-up run to its end.
    async with LiveServer(stack.app) as server, httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        got = []
        async with client.stream(
            "GET", f"/v1/automation/tasks/{task['task_id']}/events", params={"after": last_seq}, headers={**user.headers, **SSE}
        ) as r:
            assert r.status_code == 200
            async for event in iter_sse(r):
                got.append(json.loads(event.data))
    # The follow-up run opens with the message that started it (who sent it, how), then starts.
    assert [e["event"] for e in got[:2]] == ["task.message", "task.started"] and got[-1]["event"] == "task.completed"
    assert got[0]["message"]["kind"] == "follow_up" and got[0]["message"]["text"] == "Again"
    assert {e["run_id"] for e in got} == {new_run}
    assert got[0]["id"] not in {e["id"] for e in first_log}
    whole = (await http.get(f"/v1/automation/tasks/{task['task_id']}/events", headers=user.headers)).json()["data"]
    assert [e["seq"] for e in whole] == list(range(1, len(whole) + 1))
    assert [e["event"] for e in whole].count("task.created") == 1
    assert [e["event"] for e in whole].count("task.completed") == 2


async def test_many_streams_of_one_task_see_the_same_events(stack, user):
    http = stack.http
    task = await create(http, user.headers, "Shared\nSLEEP: 1")
    async with LiveServer(stack.app) as server, httpx.AsyncClient(base_url=server.url, timeout=60) as client:

        async def follow() -> list[str]:
            ids = []
            async with client.stream(
                "GET", f"/v1/automation/tasks/{task['task_id']}/events", headers={**user.headers, **SSE}
            ) as r:
                async for event in iter_sse(r):
                    ids.append(event.id)
            return ids

        results = await asyncio.gather(*(follow() for _ in range(5)))
    rows = await stored_events(stack.db, task["task_id"])
    for ids in results:
        assert ids == [str(row.seq) for row in rows]
