"""Structured output and tags on the agent protocols (CONTRACT §11): MCP's ``create_task`` takes
``output_schema`` and ``tags`` and its structured content carries ``result_json``; an A2A task
whose answer is structured has a data part beside the text in its result artifact."""

from __future__ import annotations

import pytest
from a2a.types import GetTaskRequest
from google.protobuf.json_format import MessageToDict

from tests.conftest import wait_status
from tests.protocols.test_a2a import a2a_client
from tests.protocols.test_mcp import call, mcp_session

pytestmark = pytest.mark.e2e

SCHEMA = {"type": "object", "required": ["label", "score", "urgent"],
          "properties": {"label": {"type": "string", "enum": ["bug", "question"]},
                         "score": {"type": "integer", "minimum": 2}, "urgent": {"type": "boolean"}}}


async def test_mcp_create_with_output_schema_and_tags(live, user):
    async with mcp_session(live, headers=user.headers) as session:
        task = await call(session, "create_task", {"title": "Triage", "description": "Classify it",
                                                   "output_schema": SCHEMA, "tags": ["inbox", "inbox", "mcp:1"]})
        assert task["tags"] == ["inbox", "mcp:1"] and task["output_schema"] == SCHEMA
        done = await call(session, "wait_for_task", {"task_id": task["task_id"], "timeout_seconds": 30})
        assert done["status"] == "completed"
        assert done["result_json"] == {"label": "bug", "score": 2, "urgent": True}
        listed = await call(session, "list_tasks", {"tag": ["mcp:1"]})
        assert [t["task_id"] for t in listed["data"]] == [task["task_id"]]
        bad = await session.call_tool("create_task", {"title": "t", "description": "d", "output_schema": {"type": "array"}})
        assert bad.is_error and "invalid_output_schema" in bad.content[0].text
        bad = await session.call_tool("create_task", {"title": "t", "description": "d", "tags": ["no spaces"]})
        assert bad.is_error and "validation_error" in bad.content[0].text


async def test_a2a_result_artifact_has_a_data_part(live, user):
    r = await live.stack.http.post("/v1/automation/tasks", json={"title": "Triage", "description": "Classify it",
                                                                 "output_schema": SCHEMA}, headers=user.headers)
    task_id = r.json()["task_id"]
    done = await wait_status(live.stack.http, task_id, user.headers, {"completed", "failed"})
    assert done["status"] == "completed"
    client = await a2a_client(live, user)
    async with client:
        got = await client.get_task(GetTaskRequest(id=task_id))
    parts = MessageToDict(got.artifacts[0])["parts"]
    assert parts[0]["text"] == done["result"]
    assert parts[1]["mediaType"] == "application/json"
    assert parts[1]["data"] == {"label": "bug", "score": 2, "urgent": True}
