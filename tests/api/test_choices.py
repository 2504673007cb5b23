"""Questions with options and answer schemas (CONTRACT §12) through the real stack: the action's
kind, options and schema on the task and in its events, ``choice`` / ``answer`` / ``decision``
checked by ``POST …/input`` (422 with a stable code, the task keeps waiting), and a valid choice
reaching the model as its ``ask_user`` result."""

from __future__ import annotations

import json

from tests.conftest import wait_status

TASKS = "/v1/automation/tasks"


async def _asking(stack, user, description: str) -> dict:
    r = await stack.http.post(TASKS, json={"title": "Paint the shed", "description": description}, headers=user.headers)
    assert r.status_code == 201, r.text
    return await wait_status(stack.http, r.json()["task_id"], user.headers, {"needs_input", "failed", "completed"})


def _refused(r, code: str) -> None:
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code, r.json()


async def test_a_choice_must_be_one_of_the_options_and_reaches_the_model(stack, user):
    task = await _asking(stack, user, "ASK: Which color? [red|green|blue]")
    assert task["status"] == "needs_input", task
    action = task["required_action"]
    assert list(action) == ["id", "kind", "prompt", "asked_at", "reply_url", "options", "answer_schema", "artifact"]
    assert action["kind"] == "question" and action["prompt"] == "Which color?"
    assert action["options"] == ["red", "green", "blue"]
    assert action["answer_schema"] is None and action["artifact"] is None
    url = f"{TASKS}/{task['task_id']}/input"

    _refused(await stack.http.post(url, json={"required_action_id": action["id"], "choice": "purple"}, headers=user.headers),
             "invalid_choice")
    _refused(await stack.http.post(url, json={"required_action_id": action["id"], "decision": "approve"}, headers=user.headers),
             "invalid_decision")
    r = await stack.http.post(url, json={"required_action_id": action["id"]}, headers=user.headers)
    assert r.status_code == 422, r.text
    still = (await stack.http.get(f"{TASKS}/{task['task_id']}", headers=user.headers)).json()
    assert still["status"] == "needs_input" and still["required_action"]["id"] == action["id"]

    r = await stack.http.post(url, json={"required_action_id": action["id"], "choice": "green"}, headers=user.headers)
    assert r.status_code == 200, r.text
    done = await wait_status(stack.http, task["task_id"], user.headers, {"completed", "failed"})
    assert done["status"] == "completed", done
    assert "Thanks, noted: green." in done["result"]

    events = (await stack.http.get(f"{TASKS}/{task['task_id']}/events", headers=user.headers)).json()["data"]
    [asked] = [e for e in events if e["event"] == "task.needs_input"]
    assert asked["data"]["required_action"]["kind"] == "question"
    assert asked["data"]["required_action"]["options"] == ["red", "green", "blue"]
    [reply] = [e for e in events if e["event"] == "task.message"]
    assert reply["message"]["choice"] == "green" and reply["message"]["text"] == "green"


async def test_an_answer_must_match_the_answer_schema(stack, user):
    schema = {"type": "object", "properties": {"coats": {"type": "integer", "minimum": 1}}, "required": ["coats"]}
    call = json.dumps({"question": "How many coats?", "answer_schema": schema})
    task = await _asking(stack, user, f"TOOL: ask_user {call}")
    assert task["status"] == "needs_input", task
    action = task["required_action"]
    assert action["answer_schema"] == schema and action["options"] is None
    url = f"{TASKS}/{task['task_id']}/input"
    _refused(await stack.http.post(url, json={"answer": {"coats": 0}}, headers=user.headers), "invalid_answer")
    _refused(await stack.http.post(url, json={"choice": "two"}, headers=user.headers), "invalid_choice")
    r = await stack.http.post(url, json={"answer": {"coats": 2}}, headers=user.headers)
    assert r.status_code == 200, r.text
    done = await wait_status(stack.http, task["task_id"], user.headers, {"completed", "failed"})
    assert done["status"] == "completed", done
    assert '{"coats":2}' in done["result"]


async def test_a_question_with_options_still_takes_words(stack, user):
    task = await _asking(stack, user, "ASK: Which color? [red|green]")
    r = await stack.http.post(f"{TASKS}/{task['task_id']}/input", json={"message": "Whatever matches the door"},
                              headers=user.headers)
    assert r.status_code == 200, r.text
    done = await wait_status(stack.http, task["task_id"], user.headers, {"completed", "failed"})
    assert "Whatever matches the door" in done["result"]
