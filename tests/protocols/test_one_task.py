"""One task through three faces: created over REST, answered over MCP, followed over A2A; one
task id, one event log. Scopes and rate limits are the REST ones on every face."""

from __future__ import annotations

import httpx
import pytest
from a2a.client import ClientConfig, create_client
from a2a.types.a2a_pb2 import GetTaskRequest, TaskState
from a2a.utils.errors import InvalidRequestError

from tests.conftest import wait_status
from tests.protocols.test_a2a import message, send
from tests.protocols.test_mcp import call, mcp_session

pytestmark = pytest.mark.e2e


async def test_rest_a2a_and_mcp_see_one_task_with_one_event_log(live, user):
    rest = live.stack.http
    r = await rest.post("/v1/automation/tasks", headers=user.headers,
                        json={"title": "Three faces", "description": "Go\nASK: Which face?"})
    assert r.status_code == 201
    task_id = r.json()["task_id"]
    await wait_status(rest, task_id, user.headers, {"needs_input"})

    a2a = await create_client(live.url, client_config=ClientConfig(
        httpx_client=httpx.AsyncClient(headers=user.headers, timeout=60), streaming=False))
    async with a2a:
        seen = await a2a.get_task(GetTaskRequest(id=task_id))
        assert seen.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        assert seen.status.message.parts[0].text == "Which face?"

        async with mcp_session(live, headers=user.headers) as session:
            via_mcp = await call(session, "get_task", {"task_id": task_id})
            assert via_mcp["required_action"]["prompt"] == "Which face?"
            await call(session, "answer_question", {"task_id": task_id, "message": "All of them"})
            done = await call(session, "wait_for_task", {"task_id": task_id, "timeout_seconds": 30})
        assert done["status"] == "completed"

        final = await a2a.get_task(GetTaskRequest(id=task_id))
        assert final.status.state == TaskState.TASK_STATE_COMPLETED
        assert final.artifacts[0].parts[0].text == done["result"]
    body = (await rest.get(f"/v1/automation/tasks/{task_id}", headers=user.headers)).json()
    assert body["result"] == done["result"] and body["run_id"] == done["run_id"]
    events = (await rest.get(f"/v1/automation/tasks/{task_id}/events", headers=user.headers)).json()["data"]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "task.created" and kinds[-1] == "task.completed"
    assert kinds.count("task.needs_input") == 1 and kinds.count("task.completed") == 1
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    listed = (await rest.get("/v1/automation/tasks", headers=user.headers)).json()["data"]
    assert [t["task_id"] for t in listed] == [task_id]


async def test_scopes_and_rate_limit_headers_apply_to_the_protocol_faces(live, make_user):
    reader = await make_user(tier="free", scopes=["tasks:read"])
    a2a = await create_client(live.url, client_config=ClientConfig(
        httpx_client=httpx.AsyncClient(headers=reader.headers, timeout=60), streaming=False))
    async with a2a:
        with pytest.raises(InvalidRequestError, match="tasks:write"):
            await send(a2a, message("Not allowed"))
    async with mcp_session(live, headers=reader.headers) as session:
        refused = await session.call_tool("create_task", {"title": "No", "description": "No"})
        assert refused.is_error and "insufficient_scope" in refused.content[0].text
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{live.url}/a2a", headers={**reader.headers, "A2A-Version": "1.0"},
                            json={"jsonrpc": "2.0", "id": 7, "method": "ListTasks", "params": {}})
    assert r.status_code == 200 and r.json()["id"] == 7 and r.json()["result"]["tasks"] == []
    # The free tier's 60/min budget is the same one REST spends.
    assert r.headers["x-ratelimit-limit"] == "60"
    assert int(r.headers["x-ratelimit-remaining"]) < 59
    assert r.headers["x-request-id"]
