"""The demo model drives the real tool loop: a build task on a registered local repository reads,
edits, runs bash and completes with the right diff, changed files and patch artifact."""

from __future__ import annotations


from tests.agent.repos import git, make_bare_repo, register_codebase
from tests.conftest import wait_status


async def test_demo_build_task_changes_a_file(agent_settings, stack, user, tmp_path):
    bare, base = make_bare_repo(tmp_path)
    cb = await register_codebase(stack, user, str(bare))
    prompt = "\n".join([
        "READ: app.py",
        "EDIT: app.py :: return 'hello' :: return 'hello, world'",
        "WRITE: NOTES.md :: Changed the greeting.\\n",
        "BASH: python3 -c 'import app; print(app.greet())'",
    ])
    r = await stack.http.post("/v1/automation/tasks", json={"title": "Greet the world", "description": prompt,
                                                            "agent_type": "build", "codebase_id": cb}, headers=user.headers)
    assert r.status_code == 201, r.text
    task = await wait_status(stack.http, r.json()["task_id"], user.headers, {"completed", "failed"}, timeout=120)
    assert task["status"] == "completed", task
    assert "hello, world" in task["result"]
    assert task["usage"]["turns"] == 5 and task["usage"]["tool_calls"] == 4
    files = {f["path"]: f for f in task["changes"]["files"]}
    assert files["app.py"]["status"] == "modified" and files["app.py"]["additions"] == 1 and files["app.py"]["deletions"] == 1
    assert files["NOTES.md"]["status"] == "added"
    assert task["git"]["base_commit"] == base and task["git"]["pushed"] is False
    patch = next(a for a in task["artifacts"] if a["kind"] == "patch")
    r = await stack.http.get(patch["url"], headers=user.headers)
    assert r.status_code == 200
    assert "+    return 'hello, world'" in r.text and "NOTES.md" in r.text
    # the remote is untouched (push policy none)
    assert git("rev-parse", "main", cwd=bare).strip() == base

    events = (await stack.http.get(f"/v1/automation/tasks/{task['task_id']}/events", headers=user.headers)).json()
    progress = [e["data"]["progress"]["message"] for e in events["data"] if e["event"] == "task.progress" and e["data"]["progress"]]
    assert any(m.startswith("edit: app.py") for m in progress), progress
    assert any(m.startswith("bash:") for m in progress), progress
    # the terminal event (what webhooks carry) has the results and the duration
    [done] = [e for e in events["data"] if e["event"] == "task.completed"]
    assert done["data"]["changes"] == task["changes"] and done["data"]["artifacts"] == task["artifacts"]
    assert done["data"]["usage"] == task["usage"] and done["duration_seconds"] is not None


async def test_continue_as_new_keeps_the_conversation(agent_settings, stack, user):
    from codetether.agent.loop import TURNS_PER_EXECUTION

    steps = TURNS_PER_EXECUTION + 2
    prompt = "WRITE: n.txt :: 0\n" + "\n".join(f"READ: n.txt" for _ in range(steps - 1))
    r = await stack.http.post("/v1/automation/tasks", json={"title": "Many steps", "description": prompt, "agent_type": "build",
                                                            "max_turns": steps + 5}, headers=user.headers)
    task = await wait_status(stack.http, r.json()["task_id"], user.headers, {"completed", "failed"}, timeout=240)
    assert task["status"] == "completed", task
    # One transcript across executions: the model saw every earlier step.
    assert task["result"].startswith(f"Demo agent finished: {steps} tool call(s)")
    assert task["usage"]["turns"] == steps + 1 and task["usage"]["tool_calls"] == steps
    history = await stack.client.get_workflow_handle(task["task_id"]).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    assert started.continued_execution_run_id  # this execution continued an earlier one


async def test_max_turns_stops_the_agent(agent_settings, stack, user):
    r = await stack.http.post("/v1/automation/tasks", json={"title": "Budget", "agent_type": "build", "max_turns": 2,
                                                            "description": "READ: a\nREAD: b\nREAD: c"}, headers=user.headers)
    task = await wait_status(stack.http, r.json()["task_id"], user.headers, {"completed", "failed"}, timeout=90)
    assert task["status"] == "failed" and task["error"]["code"] == "max_turns_exceeded"
    assert task["usage"]["turns"] == 2
