"""Second probe, M4 and L4: A2A and MCP skipped REST's input rules, and A2A's internal errors
carried SQL.

Over MCP, 500 KB of metadata holding NUL and 10^30 was stored, and metadata nested ~195 deep; over
A2A, metadata nested 40 deep and a 900 KB message. The task service's one validator
(``check_task_input`` / ``check_message`` in ``codetether/tasks/service.py``) now refuses them on
every face: A2A with JSON-RPC invalid params, MCP with a tool error, each naming REST's code, and
nothing is written. An unexpected error inside an A2A method answers a bare internal error with the
request id; the exception text (SQL and parameters) stays in the log.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from codetether.core.models import Task
from tests.protocols.test_mcp import mcp_session

pytestmark = pytest.mark.e2e


def nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


async def task_rows(db, user_id: str) -> int:
    async with db.session() as s:
        return (await s.execute(select(func.count()).select_from(Task).where(Task.user_id == user_id))).scalar_one()


async def a2a_send(live, user, text: str, metadata: dict | None = None) -> dict:
    msg = {"messageId": uuid.uuid4().hex, "role": "ROLE_USER", "parts": [{"text": text}]}
    params: dict = {"message": msg, "configuration": {"returnImmediately": True}}
    if metadata is not None:
        params["metadata"] = metadata
    async with httpx.AsyncClient(base_url=live.url, headers={**user.headers, "A2A-Version": "1.0"}, timeout=60) as http:
        r = await http.post("/a2a", json={"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": params})
    assert r.status_code == 200, r.text
    return r.json()


def error_data(error: dict) -> dict:
    """The error's data: A2A 1.0 sends it as the metadata of a google.rpc.ErrorInfo detail."""
    data = error["data"]
    return data[0]["metadata"] if isinstance(data, list) else data


A2A_BAD = [
    ("metadata nested 40", "hi", {"metadata": nested(40)}, "json_too_deep"),
    ("a 900 KB message", "x" * 900_000, None, "validation_error"),
    ("NUL in metadata", "hi", {"metadata": {"a": "b\u0000c"}}, "json_invalid_string"),
    ("17 KiB of metadata", "hi", {"metadata": {"a": "y" * 17_000}}, "validation_error"),
    ("metadata not an object", "hi", {"metadata": [1, 2]}, "validation_error"),
    ("a 300-character title", "hi", {"title": "t" * 300}, "validation_error"),
]


@pytest.mark.parametrize("label,text,metadata,code", A2A_BAD, ids=[b[0] for b in A2A_BAD])
async def test_a2a_refuses_what_rest_refuses(live, user, label, text, metadata, code):
    before = await task_rows(live.stack.db, user.user_id)
    body = await a2a_send(live, user, text, metadata)
    assert body["error"]["code"] == -32602, body  # JSON-RPC invalid params
    assert error_data(body["error"])["code"] == code
    assert await task_rows(live.stack.db, user.user_id) == before


async def test_a2a_still_accepts_what_rest_accepts(live, user):
    body = await a2a_send(live, user, "fine", {"metadata": {**nested(31), "n2": 2**53 - 1}})
    assert "result" in body, body


MCP_BAD = [
    ("500 KB metadata with NUL and 10^30", {"blob": "x" * 500_000 + "\u0000", "big": 10**30}, "json_"),
    ("metadata nested 195", nested(195), "json_too_deep"),
    ("10^30", {"big": 10**30}, "json_integer_out_of_range"),
    ("17 KiB", {"a": "y" * 17_000}, "validation_error"),
]


@pytest.mark.parametrize("label,metadata,code", MCP_BAD, ids=[b[0] for b in MCP_BAD])
async def test_mcp_refuses_what_rest_refuses(live, user, label, metadata, code):
    before = await task_rows(live.stack.db, user.user_id)
    async with mcp_session(live, headers=user.headers) as session:
        result = await session.call_tool("create_task", {"title": "Meta", "description": "d", "metadata": metadata})
    assert result.is_error, result
    assert f"create_task: {code}" in result.content[0].text, result.content[0].text
    assert await task_rows(live.stack.db, user.user_id) == before


async def test_mcp_refuses_nul_in_title_and_message(live, user):
    async with mcp_session(live, headers=user.headers) as session:
        titled = await session.call_tool("create_task", {"title": "a\u0000b", "description": "d"})
        assert titled.is_error and ": json_invalid_string: title" in titled.content[0].text
        sent = await session.call_tool("send_message", {"message": "a\u0000b"})
        assert sent.is_error and ": json_invalid_string: message" in sent.content[0].text


async def test_a2a_internal_error_does_not_carry_sql(live, user, monkeypatch, caplog):
    async def broken(*_args, **_kwargs):
        raise OperationalError("SELECT tasks.secret FROM tasks WHERE tasks.id = ?", ("task_probe",),
                               Exception("database is locked"))

    monkeypatch.setattr("codetether.protocols.a2a_runs.find_run", broken)
    async with httpx.AsyncClient(base_url=live.url, headers={**user.headers, "A2A-Version": "1.0"}, timeout=60) as http:
        r = await http.post("/a2a", json={"jsonrpc": "2.0", "id": 7, "method": "GetTask", "params": {"id": "task_x"}})
    error = r.json()["error"]
    assert error["code"] == -32603
    assert "SELECT" not in r.text and "task_probe" not in r.text and "locked" not in r.text
    assert error_data(error)["code"] == "internal_error"
    request_id = error_data(error)["request_id"]
    assert request_id and request_id == r.headers.get("x-request-id")
    assert any("SELECT tasks.secret" in (rec.exc_text or "") or "SELECT tasks.secret" in str(rec.exc_info)
               for rec in caplog.records)
