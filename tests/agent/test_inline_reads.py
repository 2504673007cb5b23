"""Read-only tool calls run inside the model turn (``AgentActivities._run_inline``): when the turn
runs on the worker that holds the workspace, its leading ``read``/``grep``/``glob`` calls need no
activity of their own; the first other call (and everything after it) goes to the workspace's
queue as before, so a read after an edit sees the edit."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from temporalio.api.enums.v1 import EventType

from codetether.agent.activities import AgentActivities
from codetether.agent.contracts import ModelTurnInput, ToolCall, WorkspaceInfo
from codetether.core.models import TaskEvent
from sqlalchemy import select
from tests.agent.repos import make_bare_repo, register_codebase
from tests.conftest import wait_status
from tests.support.providers import anthropic_server, openai_server, provider_env, provider_stack  # noqa: F401

TASKS = "/v1/automation/tasks"


@pytest.fixture(autouse=True)
def _local_repos(settings):
    settings.codebase_allow_local = True
    settings.codebase_key = "kT5sV0b1yQm1C3n2aB9qK8x7Zr4tW6pLhJ0dF2gS1eE="


async def _scheduled(stack, task_id: str) -> list[str]:
    history = await stack.client.get_workflow_handle(task_id).fetch_history()
    return [e.activity_task_scheduled_event_attributes.activity_type.name for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]


async def test_leading_reads_run_in_the_turn_and_a_read_after_an_edit_waits_for_it(
    provider_stack, openai_server, user, tmp_path
):
    bare, _ = make_bare_repo(tmp_path)
    cb = await register_codebase(provider_stack, user, str(bare))
    srv = openai_server
    srv.reply_tool_calls([
        ("read", {"filePath": "app.py"}),
        ("grep", {"pattern": "greet"}),
        ("edit", {"filePath": "app.py", "oldString": "'hello'", "newString": "'hi'"}),
        ("read", {"filePath": "app.py"}),
    ])
    srv.reply_tool_call("glob", {"pattern": "*.py"})
    srv.reply_text("Done.")
    r = await provider_stack.http.post(TASKS, headers=user.headers, json={
        "title": "Inline reads", "description": "Change the greeting", "model": "gpt-4o",
        "agent_type": "build", "codebase_id": cb})
    assert r.status_code == 201, r.text
    task = await wait_status(provider_stack.http, r.json()["task_id"], user.headers, {"completed", "failed"}, timeout=120)
    assert task["status"] == "completed", task

    # What the model was told, in the order it asked: the second read sees the edit.
    tools = [m for m in srv.chat_requests()[-1].body["messages"] if m["role"] == "tool"]
    first = tools[0]["tool_call_id"]
    assert [m["tool_call_id"] for m in tools[:4]] == [first, f"{first}_1", f"{first}_2", f"{first}_3"]
    assert tools[0]["content"].startswith("1: def greet():") and "'hello'" in tools[0]["content"]
    assert "app.py:1: def greet():" in tools[1]["content"]
    assert tools[2]["content"].startswith("edited app.py")
    assert "'hi'" in tools[3]["content"] and "'hello'" not in tools[3]["content"]
    assert "app.py" in tools[4]["content"]
    assert task["usage"]["tool_calls"] == 5 and task["usage"]["turns"] == 3

    # read + grep ran in the first turn, glob in the second; the edit and the read after it each
    # went to the workspace's queue.
    scheduled = await _scheduled(provider_stack, task["task_id"])
    assert scheduled.count("model_turn") == 3 and scheduled.count("run_tool") == 2, scheduled

    # Every call still reports itself as progress.
    async with provider_stack.db.session() as s:
        bodies = (await s.execute(select(TaskEvent.body).where(TaskEvent.task_id == task["task_id"],
                                                               TaskEvent.type == "task.progress"))).scalars().all()
    reported = [b for b in bodies if '"tool"' in b]
    for name in ("read", "grep", "edit", "glob"):
        assert any(f'"tool":"{name}"' in b.replace(" ", "") for b in reported), (name, reported)


class _NoCalls:
    async def execute(self, inp):  # pragma: no cover - must not be reached
        raise AssertionError("a call ran on a worker that does not hold the workspace")


@pytest.mark.parametrize("queue, exists", [("ct.ws.other", True), ("ct.ws.mine", False)])
async def test_a_turn_away_from_the_workspace_runs_no_call(tmp_path, queue, exists):
    """On another worker (or when the workspace's folder is gone) every call is left to the
    workflow, which sends it to the workspace's queue (and moves the workspace if need be)."""
    path = tmp_path / "ws"
    if exists:
        path.mkdir()
    inp = ModelTurnInput(task_id="task_x", run_id="run_x", owner_id="usr_x", model="demo", agent_type="build", seq=4,
                         workspace=WorkspaceInfo(task_queue=queue, path=str(path)))
    here = SimpleNamespace(tool_calls=_NoCalls(), own_queue="ct.ws.mine")
    ran, outputs = await AgentActivities._run_inline(here, inp, [ToolCall(id="c1", name="read", arguments={"filePath": "a"})])
    assert ran == [] and outputs == []
