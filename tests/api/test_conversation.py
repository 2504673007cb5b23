"""Human in the loop and conversations through the real stack (API, Temporal dev server, worker).

``POST /tasks/{id}/input``, ``POST /tasks/{id}/messages`` and ``POST /v1/automation/messages``,
with the demo model and with a scripted OpenAI-compatible server that calls ``ask_user``.
"""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio

from tests.conftest import running_stack, wait_status
from tests.support.openai_server import OpenAIServer

TERMINAL = {"completed", "failed", "cancelled"}


async def create(http, headers, prompt: str, **extra) -> dict:
    r = await http.post(
        "/v1/automation/tasks", json={"title": extra.pop("title", "Conversation"), "prompt": prompt, **extra}, headers=headers
    )
    assert r.status_code == 201, r.text
    return r.json()


# ---- a real (scripted) OpenAI-compatible model that calls ask_user -------------------------


@pytest.fixture
def openai_server(monkeypatch: pytest.MonkeyPatch):
    with OpenAIServer() as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-scripted")
        yield srv


@pytest_asyncio.fixture
async def openai_stack(settings, temporal_env, db, openai_server):
    async with running_stack(settings, temporal_env.client, db) as s:
        yield s


async def test_question_reply_reaches_model_as_tool_result(openai_stack, openai_server, user):
    http = openai_stack.http
    openai_server.reply_ask_user("Which color should the logo be?", call_id="call_color")
    openai_server.reply_ask_user("Matte or glossy?", call_id="call_finish")
    openai_server.reply_text("A blue, glossy logo.")

    task = await create(http, user.headers, "Design a logo", model="gpt-4o")
    task_id = task["task_id"]

    # The long-poll answers as soon as the task asks its question.
    r = await http.get(f"/v1/automation/tasks/{task_id}", params={"wait": 30}, headers=user.headers)
    assert r.status_code == 200
    waiting = r.json()
    assert waiting["status"] == "needs_input", waiting
    first = waiting["required_action"]
    assert first["kind"] == "question"
    assert first["prompt"] == "Which color should the logo be?"
    assert first["id"].startswith("act_") and first["asked_at"].endswith("Z")

    r = await http.post(
        f"/v1/automation/tasks/{task_id}/input",
        json={"message": "Blue", "required_action_id": first["id"]},
        headers=user.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["task_id"] == task_id
    assert r.json()["required_action"] is None or r.json()["required_action"]["id"] != first["id"]

    second = (await wait_status(http, task_id, user.headers, {"needs_input"} | TERMINAL))["required_action"]
    assert second["prompt"] == "Matte or glossy?"
    assert second["id"] != first["id"]

    # Answering the first question again is stale now.
    r = await http.post(
        f"/v1/automation/tasks/{task_id}/input",
        json={"message": "Red", "required_action_id": first["id"]},
        headers=user.headers,
    )
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "stale_required_action"

    r = await http.post(
        f"/v1/automation/tasks/{task_id}/input",
        json={"message": "Glossy", "required_action_id": second["id"]},
        headers=user.headers,
    )
    assert r.status_code == 200, r.text

    done = await wait_status(http, task_id, user.headers, TERMINAL)
    assert done["status"] == "completed", done
    assert done["result"] == "A blue, glossy logo."

    chats = openai_server.chat_requests()
    assert len(chats) == 3
    # The reply went back to the model as the result of its ask_user call.
    second_call = chats[1].body["messages"]
    assert second_call[-2]["role"] == "assistant"
    assert second_call[-2]["tool_calls"][0]["id"] == "call_color"
    assert second_call[-2]["tool_calls"][0]["function"]["name"] == "ask_user"
    assert second_call[-1] == {"role": "tool", "tool_call_id": "call_color", "content": "Blue"}
    third_call = chats[2].body["messages"]
    assert third_call[-1] == {"role": "tool", "tool_call_id": "call_finish", "content": "Glossy"}
    # ...with the whole conversation before it.
    assert [m["role"] for m in third_call] == ["system", "user", "assistant", "tool", "assistant", "tool"]


async def test_follow_up_run_carries_the_conversation_to_the_model(openai_stack, openai_server, user):
    http = openai_stack.http
    openai_server.reply_text("Here is the first draft.")
    openai_server.reply_text("Here is a shorter draft.")
    task = await create(http, user.headers, "Write a slogan", model="gpt-4o")
    first = await wait_status(http, task["task_id"], user.headers, TERMINAL)
    assert first["status"] == "completed"

    r = await http.post(
        f"/v1/automation/tasks/{task['task_id']}/messages", json={"message": "Make it shorter"}, headers=user.headers
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["delivered_as"] == "follow_up"
    assert body["task_id"] == task["task_id"] == body["conversation_id"]
    assert body["run_id"] != first["run_id"]

    done = await wait_status(http, task["task_id"], user.headers, TERMINAL)
    assert done["status"] == "completed" and done["result"] == "Here is a shorter draft."
    assert done["run_id"] == body["run_id"]
    messages = openai_server.chat_requests()[1].body["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2]["content"] == "Here is the first draft."
    assert messages[3]["content"] == "Make it shorter"


# ---- the demo model ----------------------------------------------------------------------


async def test_input_refused_unless_waiting(stack, user):
    http = stack.http
    task = await create(http, user.headers, "SLEEP: 30")
    await wait_status(http, task["task_id"], user.headers, {"running"} | TERMINAL)
    r = await http.post(f"/v1/automation/tasks/{task['task_id']}/input", json={"message": "hi"}, headers=user.headers)
    assert r.status_code == 409
    assert r.json()["code"] == "task_not_waiting"
    r = await http.delete(f"/v1/automation/tasks/{task['task_id']}", headers=user.headers)
    assert r.status_code in (200, 202)

    done_task = await create(http, user.headers, "Nothing to ask")
    await wait_status(http, done_task["task_id"], user.headers, TERMINAL)
    r = await http.post(f"/v1/automation/tasks/{done_task['task_id']}/input", json={"message": "hi"}, headers=user.headers)
    assert r.status_code == 409
    assert r.json()["code"] == "task_not_waiting"


@pytest.mark.postgres
async def test_stale_required_action_is_409_and_reply_without_id_works(stack, user):
    http = stack.http
    task = await create(http, user.headers, "Paint the fence\nASK: Which color?")
    waiting = await wait_status(http, task["task_id"], user.headers, {"needs_input"} | TERMINAL)
    assert waiting["status"] == "needs_input"

    r = await http.post(
        f"/v1/automation/tasks/{task['task_id']}/input",
        json={"message": "Green", "required_action_id": "act_00000000000000000000000000"},
        headers=user.headers,
    )
    assert r.status_code == 409
    assert r.json()["code"] == "stale_required_action"
    # The stale reply changed nothing.
    still = (await http.get(f"/v1/automation/tasks/{task['task_id']}", headers=user.headers)).json()
    assert still["status"] == "needs_input"
    assert still["required_action"] == waiting["required_action"]

    r = await http.post(f"/v1/automation/tasks/{task['task_id']}/input", json={"message": "Green"}, headers=user.headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] != "needs_input"
    done = await wait_status(http, task["task_id"], user.headers, TERMINAL)
    assert done["status"] == "completed"
    assert done["result"].startswith("Thanks, noted: Green.")

    # The same reply again: the task no longer waits.
    r = await http.post(
        f"/v1/automation/tasks/{task['task_id']}/input",
        json={"message": "Green", "required_action_id": waiting["required_action"]["id"]},
        headers=user.headers,
    )
    assert r.status_code == 409
    assert r.json()["code"] == "task_not_waiting"


async def test_message_while_waiting_is_the_reply(stack, user):
    http = stack.http
    task = await create(http, user.headers, "Plan a trip\nASK: Where to?")
    await wait_status(http, task["task_id"], user.headers, {"needs_input"} | TERMINAL)
    r = await http.post(f"/v1/automation/tasks/{task['task_id']}/messages", json={"message": "Lisbon"}, headers=user.headers)
    assert r.status_code == 200, r.text
    assert r.json()["delivered_as"] == "reply"
    done = await wait_status(http, task["task_id"], user.headers, TERMINAL)
    assert done["status"] == "completed"
    assert done["result"].startswith("Thanks, noted: Lisbon.")


async def test_message_while_running_reaches_the_next_turn(stack, user):
    http = stack.http
    task = await create(http, user.headers, "Slow job\nSLEEP: 3")
    await wait_status(http, task["task_id"], user.headers, {"running"} | TERMINAL)
    r = await http.post(
        f"/v1/automation/tasks/{task['task_id']}/messages", json={"message": "Also add a summary"}, headers=user.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["delivered_as"] == "queued"
    assert r.json()["run_id"] == task["run_id"]
    done = await wait_status(http, task["task_id"], user.headers, TERMINAL)
    assert done["status"] == "completed"
    assert done["run_id"] == task["run_id"]
    # The demo model counts the user messages it was given: the prompt and the queued one.
    assert "in 2 message(s)" in done["result"], done["result"]


@pytest.mark.postgres
async def test_message_to_finished_task_starts_follow_up_run(stack, user):
    http = stack.http
    task = await create(http, user.headers, "Summarize feedback", title="Feedback")
    first = await wait_status(http, task["task_id"], user.headers, TERMINAL)
    assert first["status"] == "completed"
    assert "in 1 message(s)" in first["result"]

    r = await http.post(
        f"/v1/automation/tasks/{task['task_id']}/messages", json={"message": "Now in one line"}, headers=user.headers
    )
    assert r.status_code == 200, r.text
    follow = r.json()
    assert follow["delivered_as"] == "follow_up"
    assert follow["task_id"] == task["task_id"]
    assert follow["run_id"] != first["run_id"]
    assert follow["status"] in ("queued", "running", "completed")

    done = await wait_status(http, task["task_id"], user.headers, TERMINAL)
    assert done["status"] == "completed"
    assert done["run_id"] == follow["run_id"]
    assert done["created_at"] == first["created_at"]
    assert "in 2 message(s). This is follow-up message 1." in done["result"]

    # A second follow-up keeps the whole history.
    r = await http.post(f"/v1/automation/tasks/{task['task_id']}/messages", json={"message": "Thanks"}, headers=user.headers)
    assert r.json()["delivered_as"] == "follow_up"
    done = await wait_status(http, task["task_id"], user.headers, TERMINAL)
    assert "in 3 message(s). This is follow-up message 2." in done["result"]

    listing = (await http.get("/v1/automation/tasks", headers=user.headers)).json()["data"]
    assert [t["task_id"] for t in listing].count(task["task_id"]) == 1


@pytest.mark.postgres
async def test_concurrent_messages_to_finished_task_start_one_run(stack, user):
    http = stack.http
    task = await create(http, user.headers, "Count messages")
    await wait_status(http, task["task_id"], user.headers, TERMINAL)
    url = f"/v1/automation/tasks/{task['task_id']}/messages"
    a, b = await asyncio.gather(
        http.post(url, json={"message": "first extra"}, headers=user.headers),
        http.post(url, json={"message": "second extra"}, headers=user.headers),
    )
    assert a.status_code == 200 and b.status_code == 200, (a.text, b.text)
    kinds = sorted([a.json()["delivered_as"], b.json()["delivered_as"]])
    # One message starts the follow-up; the other joins that run (or a further one if it had already ended).
    assert "follow_up" in kinds
    done = await wait_status(http, task["task_id"], user.headers, TERMINAL)
    assert done["status"] == "completed"
    events = (await http.get(f"/v1/automation/tasks/{task['task_id']}/events", headers=user.headers)).json()["data"]
    assert [e for e in events if e["event"] == "task.created"].__len__() == 1


async def test_zapier_send_message_starts_and_continues_a_conversation(stack, user, make_user):
    http = stack.http
    r = await http.post(
        "/v1/automation/messages",
        json={"message": "Draft a tweet about cats\nKeep it friendly.", "model": "demo", "conversation_id": "", "codebase_id": ""},
        headers=user.headers,
    )
    assert r.status_code == 201, r.text
    started = r.json()
    assert started["delivered_as"] == "new_task"
    assert started["conversation_id"] == started["task_id"]
    assert started["title"] == "Draft a tweet about cats"
    assert started["description"] == "Draft a tweet about cats\nKeep it friendly."
    assert started["status"] == "queued"
    assert r.headers["location"] == f"/v1/automation/tasks/{started['task_id']}"
    first = await wait_status(http, started["task_id"], user.headers, TERMINAL)
    assert first["status"] == "completed"

    r = await http.post(
        "/v1/automation/messages",
        json={"message": "Shorter please", "conversation_id": started["conversation_id"]},
        headers=user.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["delivered_as"] == "follow_up"
    assert r.json()["task_id"] == started["task_id"]
    done = await wait_status(http, started["task_id"], user.headers, TERMINAL)
    assert "This is follow-up message 1." in done["result"]

    stranger = await make_user()
    r = await http.post(
        "/v1/automation/messages",
        json={"message": "hello", "conversation_id": started["task_id"]},
        headers=stranger.headers,
    )
    assert r.status_code == 404
    assert r.json()["code"] == "task_not_found"

    r = await http.post("/v1/automation/messages", json={"message": "x", "model": "no-such-model"}, headers=user.headers)
    assert r.status_code == 422 and r.json()["code"] == "unknown_model"
    r = await http.post("/v1/automation/messages", json={"message": "  "}, headers=user.headers)
    assert r.status_code == 422
    r = await http.post("/v1/automation/messages", json={"message": "x", "colour": "red"}, headers=user.headers)
    assert r.status_code == 422


async def test_another_users_task_is_404_and_scope_is_checked(stack, user, make_user):
    http = stack.http
    task = await create(http, user.headers, "Private\nASK: Secret?")
    await wait_status(http, task["task_id"], user.headers, {"needs_input"} | TERMINAL)
    stranger = await make_user()
    for path in ("input", "messages"):
        r = await http.post(f"/v1/automation/tasks/{task['task_id']}/{path}", json={"message": "x"}, headers=stranger.headers)
        assert r.status_code == 404, r.text
        assert r.json()["code"] == "task_not_found"
    reader = await make_user(scopes=["tasks:read"])
    r = await http.post("/v1/automation/messages", json={"message": "x"}, headers=reader.headers)
    assert r.status_code == 403 and r.json()["code"] == "insufficient_scope"
    still = (await http.get(f"/v1/automation/tasks/{task['task_id']}", headers=user.headers)).json()
    assert still["status"] == "needs_input"


async def test_reply_on_a_tier_with_running_limit_resumes_through_a_slot(stack, make_user):
    # A free-tier task gives its running slot back while it waits and takes one again after the reply.
    free = await make_user(tier="free")
    http = stack.http
    task = await create(http, free.headers, "Limited\nASK: Go ahead?")
    waiting = await wait_status(http, task["task_id"], free.headers, {"needs_input"} | TERMINAL)
    assert waiting["status"] == "needs_input"
    r = await http.post(
        f"/v1/automation/tasks/{task['task_id']}/input",
        json={"message": "Yes", "required_action_id": waiting["required_action"]["id"]},
        headers=free.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] in ("queued", "running", "completed")
    assert r.json()["required_action"] is None
    done = await wait_status(http, task["task_id"], free.headers, TERMINAL)
    assert done["status"] == "completed"
    assert done["result"].startswith("Thanks, noted: Yes.")
