"""Plan approval (CONTRACT §12) through REST on a registered local repository: a build task created
with ``require_approval: "plan"`` plans first (read-only, plan.md), parks with an ``approval`` whose
artifact is the plan, a rejection's feedback yields a revised plan and a second approval, and the
approval lets the same task, in the same workflow run and workspace, make and commit the change.

The demo model writes its ``PLAN:`` lines to plan.md while it plans and runs the other lines once
the plan is approved."""

from __future__ import annotations

import asyncio


from tests.agent.repos import git, make_bare_repo, register_codebase
from tests.conftest import wait_status

TASKS = "/v1/automation/tasks"


async def _next_action(stack, user, task_id: str, after: str | None, timeout: float = 90) -> dict:
    """The task once it waits on an action other than ``after`` (or has ended)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        task = await wait_status(stack.http, task_id, user.headers, {"needs_input", "completed", "failed"}, timeout=timeout)
        if task["status"] != "needs_input" or task["required_action"]["id"] != after:
            return task
        assert loop.time() < deadline, task
        await asyncio.sleep(0.1)


async def test_a_plan_is_rejected_revised_then_approved_and_built(agent_settings, stack, user, tmp_path):
    bare, base = make_bare_repo(tmp_path)
    cb = await register_codebase(stack, user, str(bare), push="branch")
    prompt = "\n".join([
        "PLAN: 1. Change the greeting in app.py",
        "READ: app.py",
        "EDIT: app.py :: return 'hello' :: return 'hello, world'",
    ])
    r = await stack.http.post(TASKS, json={"title": "Greet the world", "description": prompt, "codebase_id": cb,
                                           "require_approval": "plan"}, headers=user.headers)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["require_approval"] == "plan" and created["agent_type"] == "build"
    task_id, run_id = created["task_id"], created["run_id"]

    first = await _next_action(stack, user, task_id, None)
    assert first["status"] == "needs_input", first
    action = first["required_action"]
    assert action["kind"] == "approval" and action["options"] is None
    plan = action["artifact"]
    assert plan["kind"] == "plan" and plan["name"] == "plan.md"
    assert plan["content"] == "1. Change the greeting in app.py\n"
    r = await stack.http.get(plan["url"], headers=user.headers)
    assert r.status_code == 200 and r.text == plan["content"]
    # Nothing changed yet: the plan agent's workspace is read-only and the edit waits.
    assert first["changes"] is None

    url = f"{TASKS}/{task_id}/input"
    r = await stack.http.post(url, json={"required_action_id": action["id"], "message": "looks fine"}, headers=user.headers)
    assert r.status_code == 422 and r.json()["code"] == "decision_required", r.text
    r = await stack.http.post(url, json={"required_action_id": action["id"], "choice": "approve"}, headers=user.headers)
    assert r.status_code == 422, r.text

    feedback = "Say who is greeted.\nPLAN: 1. Change the greeting in app.py to greet the world\nPLAN: 2. Keep greet() returning a string"
    r = await stack.http.post(url, json={"required_action_id": action["id"], "decision": "reject", "message": feedback},
                              headers=user.headers)
    assert r.status_code == 200, r.text

    second = await _next_action(stack, user, task_id, action["id"])
    assert second["status"] == "needs_input", second
    again = second["required_action"]
    assert again["kind"] == "approval" and again["id"] != action["id"]
    assert again["artifact"]["name"] == "plan-2.md" and "2. Keep greet() returning a string" in again["artifact"]["content"]
    assert second["run_id"] == run_id

    r = await stack.http.post(url, json={"required_action_id": again["id"], "decision": "approve"}, headers=user.headers)
    assert r.status_code == 200, r.text
    done = await wait_status(stack.http, task_id, user.headers, {"completed", "failed"}, timeout=120)
    assert done["status"] == "completed", done
    assert done["run_id"] == run_id
    files = {f["path"]: f for f in done["changes"]["files"]}
    assert list(files) == ["app.py"] and files["app.py"]["status"] == "modified"
    # Committed and pushed on the task's branch; the approved plan stays among the artifacts.
    assert done["git"]["pushed"] is True and done["git"]["branch"] == f"codetether/{task_id}"
    assert "return 'hello, world'" in git("show", f"{done['git']['branch']}:app.py", cwd=bare)
    assert git("rev-parse", "main", cwd=bare).strip() == base
    kinds = [a["kind"] for a in done["artifacts"]]
    assert "patch" in kinds and "plan" in kinds
    assert next(a for a in done["artifacts"] if a["kind"] == "plan")["name"] == "plan-2.md"

    events = (await stack.http.get(f"{TASKS}/{task_id}/events", headers=user.headers)).json()["data"]
    asked = [e["data"]["required_action"] for e in events if e["event"] == "task.needs_input"]
    assert [a["kind"] for a in asked] == ["approval", "approval"]
    decisions = [e["message"].get("decision") for e in events if e["event"] == "task.message"]
    assert decisions == ["reject", "approve"]
    assert [e["event"] for e in events].count("task.started") == 1


async def test_require_approval_needs_an_agent_that_changes_things(stack, user):
    r = await stack.http.post(TASKS, json={"title": "Look", "description": "x", "agent_type": "explore",
                                           "require_approval": "plan"}, headers=user.headers)
    assert r.status_code == 422, r.text
    r = await stack.http.post(TASKS, json={"title": "Look", "description": "x", "require_approval": "code"},
                              headers=user.headers)
    assert r.status_code == 422, r.text
