"""`codetether dev` as users run it (its own Temporal dev server, worker and API processes), driven
by the a2a-sdk and mcp SDK clients: card discovery, a blocking A2A send, MCP create → wait."""

from __future__ import annotations

import os
import re
import uuid

import httpx
import pytest
from a2a.client import ClientConfig, create_client
from a2a.types.a2a_pb2 import Message, Part, Role, SendMessageRequest, TaskState

from tests.production.procs import BIN, Proc, free_port, port_open, wait_until
from tests.protocols.test_mcp import call, mcp_session

pytestmark = pytest.mark.e2e


@pytest.fixture
def dev_stack(tmp_path):
    api, temporal, ui = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODETETHER_")}
    proc = Proc("codetether-dev", [str(BIN / "codetether"), "dev", "--api-port", str(api), "--temporal-port",
                                   str(temporal), "--ui-port", str(ui), "--data-dir", str(tmp_path / "data")],
                env, tmp_path / "dev.log").start()
    try:
        wait_until(lambda: "API key" in proc.tail(100_000) and port_open(api), 180, "codetether dev ready", proc)
        key = re.search(r"API key\s+(ct_\S+)", proc.tail(100_000)).group(1)
        yield f"http://127.0.0.1:{api}", key
    finally:
        proc.stop(timeout=30)


class _Live:
    def __init__(self, url: str) -> None:
        self.url = url


async def test_sdk_clients_against_codetether_dev(dev_stack):
    url, key = dev_stack
    headers = {"Authorization": f"Bearer {key}"}
    client = await create_client(url, client_config=ClientConfig(
        httpx_client=httpx.AsyncClient(headers=headers, timeout=90), streaming=False))
    async with client:
        assert client._card.name == "CodeTether"
        msg = Message(message_id=uuid.uuid4().hex, role=Role.ROLE_USER, parts=[Part(text="Hello from A2A")])
        task = [e async for e in client.send_message(SendMessageRequest(message=msg))][-1].task
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    assert task.artifacts[0].parts[0].text.startswith("Demo result")

    async with mcp_session(_Live(url), headers=headers) as session:
        made = await call(session, "create_task", {"title": "From MCP", "description": "Hello"})
        done = await call(session, "wait_for_task", {"task_id": made["task_id"], "timeout_seconds": 60})
    assert done["status"] == "completed"
    async with httpx.AsyncClient(base_url=url, headers=headers) as http:
        ids = [t["task_id"] for t in (await http.get("/v1/automation/tasks")).json()["data"]]
    assert set(ids) == {task.id, made["task_id"]}



