"""A demo task through the real stack: create → started → completed, and needs_input."""

from __future__ import annotations

from tests.conftest import wait_status


async def test_demo_task_completes(stack, user):
    r = await stack.http.post(
        "/v1/automation/tasks",
        json={"title": "Analyze feedback", "description": "Summarize this feedback", "model": "demo"},
        headers=user.headers,
    )
    assert r.status_code == 201, r.text
    task = r.json()
    assert task["status"] == "queued"
    assert task["task_id"].startswith("task_")
    assert r.headers["location"] == f"/v1/automation/tasks/{task['task_id']}"
    done = await wait_status(stack.http, task["task_id"], user.headers, {"completed", "failed"})
    assert done["status"] == "completed", done
    assert done["result"].startswith('Demo result for "Analyze feedback"')
    assert done["result_summary"] == done["result"][:500]
    assert done["created_at"].endswith("Z") and done["completed_at"].endswith("Z")
    assert done["runtime_seconds"] is not None and done["runtime_seconds"] >= 0
    assert done["error"] is None and done["required_action"] is None


async def test_prompt_alias_and_ask(stack, user):
    r = await stack.http.post(
        "/v1/automation/tasks",
        json={"title": "Needs a color", "prompt": "Paint it\nASK: Which color?"},
        headers=user.headers,
    )
    assert r.status_code == 201, r.text
    task_id = r.json()["task_id"]
    waiting = await wait_status(stack.http, task_id, user.headers, {"needs_input", "failed"})
    assert waiting["status"] == "needs_input"
    assert waiting["required_action"]["prompt"] == "Which color?"
    assert waiting["required_action"]["kind"] == "question"
