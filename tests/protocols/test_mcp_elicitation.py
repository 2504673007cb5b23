"""MCP elicitation against the live stack, with the official ``mcp`` SDK client over Streamable HTTP:
a client that declares ``elicitation`` is asked the task's question from inside ``wait_for_task``
(the options as an enum; a plan approval as a decision) and its answer completes the task; a
client without it gets ``needs_input`` as before; declining leaves the question unanswered; a
wrong answer is a tool error. Sessions (opened only for such clients) are bound to their user
and end on DELETE."""

from __future__ import annotations

import asyncio
import contextlib
import json

import httpx
import httpx2
import mcp_types as types
import pytest
from mcp.client.session import ClientRequestContext, ClientSession
from mcp.client.streamable_http import streamable_http_client

from codetether.api.edge.streamcap import stream_slots
from tests.agent.repos import git, make_bare_repo

pytestmark = pytest.mark.e2e

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "clientInfo": {"name": "elicitation-test", "version": "1"}}}
STREAMS = {"Accept": "application/json, text/event-stream"}


class Host:
    """An MCP host's elicitation handler: records each request and answers with the next reply."""

    def __init__(self, *replies: types.ElicitResult) -> None:
        self.replies = list(replies)
        self.asked: list[types.ElicitRequestFormParams] = []

    async def __call__(self, context: ClientRequestContext, params: types.ElicitRequestParams):
        self.asked.append(params)
        return self.replies.pop(0)


@contextlib.asynccontextmanager
async def mcp_session(live, headers: dict, host: Host | None = None):
    async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
        async with streamable_http_client(f"{live.url}/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write, elicitation_callback=host) as session:
                await session.initialize()
                yield session


async def call(session: ClientSession, name: str, args: dict) -> dict:
    result = await session.call_tool(name, args)
    assert not result.is_error, result.content
    return result.structured_content


def accept(**content) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content=content)


async def test_a_question_with_options_is_asked_and_the_choice_completes_the_task(live, user):
    host = Host(accept(answer="green"))
    async with mcp_session(live, user.headers, host) as session:
        task = await call(session, "create_task", {"title": "Fence", "description": "ASK: Which color? [red|green]"})
        done = await call(session, "wait_for_task", {"task_id": task["task_id"], "timeout_seconds": 60})
    assert done["status"] == "completed", done
    assert done["result"].startswith("Thanks, noted: green.")
    [asked] = host.asked
    assert asked.mode in (None, "form") and asked.message == "Which color?"
    assert asked.requested_schema == {"type": "object", "required": ["answer"], "properties": {
        "answer": {"type": "string", "title": "Answer", "enum": ["red", "green"]}}}
    events = (await live.stack.http.get(f"/v1/automation/tasks/{task['task_id']}/events", headers=user.headers)).json()
    [answered] = [e for e in events["data"] if e["event"] == "task.message"]
    assert answered["message"]["choice"] == "green"


async def test_a_client_without_elicitation_gets_needs_input(live, user):
    async with mcp_session(live, user.headers) as session:
        task = await call(session, "create_task", {"title": "Fence", "description": "ASK: Which color? [red|green]"})
        waiting = await call(session, "wait_for_task", {"task_id": task["task_id"], "timeout_seconds": 30})
        assert waiting["status"] == "needs_input" and waiting["required_action"]["options"] == ["red", "green"]
        await call(session, "cancel_task", {"task_id": task["task_id"]})


async def test_declining_leaves_the_question_and_a_wrong_answer_is_a_tool_error(live, user):
    host = Host(types.ElicitResult(action="decline"), accept(answer="blue"), types.ElicitResult(action="cancel"),
                accept(answer="Blue, please"))
    async with mcp_session(live, user.headers, host) as session:
        task = await call(session, "create_task", {"title": "Fence", "description": "ASK: Which color? [red|green]"})
        waiting = await call(session, "wait_for_task", {"task_id": task["task_id"], "timeout_seconds": 30})
        assert waiting["status"] == "needs_input" and waiting["required_action"]["prompt"] == "Which color?"
        action_id = waiting["required_action"]["id"]

        refused = await session.call_tool("wait_for_task", {"task_id": task["task_id"], "timeout_seconds": 30})
        assert refused.is_error and "invalid_choice: choice must be one of the options" in refused.content[0].text
        still = await call(session, "wait_for_task", {"task_id": task["task_id"], "timeout_seconds": 30})
        assert still["status"] == "needs_input" and still["required_action"]["id"] == action_id
        assert len(host.asked) == 3

        free = await call(session, "create_task", {"title": "Fence", "description": "Paint it\nASK: Which color?"})
        done = await call(session, "wait_for_task", {"task_id": free["task_id"], "timeout_seconds": 60})
        assert done["status"] == "completed" and done["result"].startswith("Thanks, noted: Blue, please.")
        assert host.asked[-1].requested_schema["properties"] == {"answer": {"type": "string", "title": "Answer"}}
        await call(session, "cancel_task", {"task_id": task["task_id"]})


@pytest.fixture
def local_codebases(settings):
    settings.codebase_allow_local = True
    return settings


async def test_a_plan_approval_is_a_decision_rejected_then_approved(local_codebases, live, user, tmp_path):
    bare, _base = make_bare_repo(tmp_path)
    r = await live.stack.http.post("/v1/automation/codebases", json={"name": "web", "repository_url": str(bare),
                                                                     "push": "branch"}, headers=user.headers)
    assert r.status_code == 201, r.text
    prompt = "PLAN: 1. Change the greeting in app.py\nEDIT: app.py :: return 'hello' :: return 'hello, world'"
    r = await live.stack.http.post("/v1/automation/tasks", headers=user.headers, json={
        "title": "Greet the world", "description": prompt, "codebase_id": r.json()["codebase_id"],
        "require_approval": "plan"})
    assert r.status_code == 201, r.text
    task_id = r.json()["task_id"]
    host = Host(accept(decision="reject", message="PLAN: 1. Greet the world in app.py"), accept(decision="approve"))
    async with mcp_session(live, user.headers, host) as session:
        done = await call(session, "wait_for_task", {"task_id": task_id, "timeout_seconds": 120})
    assert done["status"] == "completed", done
    first, second = host.asked
    assert first.requested_schema["properties"]["decision"]["enum"] == ["approve", "reject"]
    assert first.requested_schema["required"] == ["decision"] and "message" in first.requested_schema["properties"]
    assert "1. Change the greeting in app.py" in first.message
    assert "1. Greet the world in app.py" in second.message
    assert "return 'hello, world'" in git("show", f"{done['git']['branch']}:app.py", cwd=bare)


async def test_sessions_only_for_elicitation_and_bound_to_their_user(live, user, make_user):
    other = await make_user()
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        plain = await http.post("/mcp", json={**INIT, "params": {**INIT["params"], "capabilities": {}}},
                                headers={**user.headers, **STREAMS})
        assert plain.status_code == 200 and "mcp-session-id" not in plain.headers
        opened = await http.post("/mcp", json={**INIT, "params": {**INIT["params"], "capabilities": {"elicitation": {}}}},
                                 headers={**user.headers, **STREAMS})
        assert opened.status_code == 200, opened.text
        sid = opened.headers["mcp-session-id"]
        listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
        session = {"mcp-session-id": sid, "MCP-Protocol-Version": "2025-11-25", **STREAMS}
        assert (await http.post("/mcp", json=listing, headers={**other.headers, **session})).status_code == 404
        assert (await http.post("/mcp", json=listing, headers={**session})).status_code == 401
        mine = await http.post("/mcp", json=listing, headers={**user.headers, **session})
        assert mine.status_code == 200 and "wait_for_task" in mine.text
        # The session's server-to-client stream is held open and takes one of the user's stream slots.
        slots = stream_slots(live.stack.app.state.codetether)
        async with http.stream("GET", "/mcp", headers={**user.headers, **session, "Accept": "text/event-stream"}) as held:
            assert held.status_code == 200 and held.headers["content-type"].startswith("text/event-stream")
            assert slots.open_for(user.user_id) == 1
        await asyncio.sleep(0.3)
        assert slots.open_for(user.user_id) == 0
        assert (await http.delete("/mcp", headers={**other.headers, **session})).status_code == 404
        assert (await http.delete("/mcp", headers={**user.headers, **session})).status_code == 200
        assert (await http.post("/mcp", json=listing, headers={**user.headers, **session})).status_code == 404


@pytest.fixture
def short_sessions(settings):
    settings.mcp_session_idle_seconds = 0.5
    return settings


async def test_an_idle_session_ends(short_sessions, live, user):
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        opened = await http.post("/mcp", json={**INIT, "params": {**INIT["params"], "capabilities": {"elicitation": {}}}},
                                 headers={**user.headers, **STREAMS})
        session = {"mcp-session-id": opened.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-11-25", **STREAMS}
        listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
        assert (await http.post("/mcp", json=listing, headers={**user.headers, **session})).status_code == 200
        await asyncio.sleep(1.5)
        assert (await http.post("/mcp", json=listing, headers={**user.headers, **session})).status_code == 404


async def test_a_stateless_2026_client_that_declares_elicitation_gets_needs_input(live, user):
    """Protocol 2026-07-28 has no session, so no request can reach the client during the call."""
    async with mcp_session(live, user.headers) as session:
        task = await call(session, "create_task", {"title": "Fence", "description": "ASK: Which color? [red|green]"})
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "elicitation-test", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {"elicitation": {"form": {}}}}
    body = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "wait_for_task", "arguments": {"task_id": task["task_id"], "timeout_seconds": 30}, "_meta": meta}}
    headers = {**user.headers, **STREAMS, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call",
               "Mcp-Name": "wait_for_task"}
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as http:
        r = await http.post("/mcp", json=body, headers=headers)
    assert r.status_code == 200, r.text
    assert "mcp-session-id" not in r.headers
    text = r.text if r.headers["content-type"].startswith("application/json") else r.text.rsplit("data: ", 1)[1]
    result = json.loads(text)["result"]
    assert result["structuredContent"]["status"] == "needs_input", result
