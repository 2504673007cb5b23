"""Each agent backend through the real stack: API → Temporal → worker → a scripted provider server.

The OpenAI and Anthropic backends talk HTTP to real servers on loopback (tests/support), found the
way an operator configures them (``OPENAI_BASE_URL``, ``ANTHROPIC_BASE_URL`` and their keys).
"""

from __future__ import annotations

import json

from tests.conftest import wait_status
from tests.support.providers import anthropic_server, openai_server, provider_env, provider_stack  # noqa: F401
from codetether.tasks.workflow import TaskWorkflow
from codetether.tasks.contracts import ProvideInputInput

TASKS = "/v1/automation/tasks"


async def create(stack, user, **body) -> dict:
    body.setdefault("title", "Write a haiku")
    body.setdefault("description", "About durable workflows.")
    r = await stack.http.post(TASKS, json=body, headers=user.headers)
    assert r.status_code == 201, r.text
    return r.json()


def offered_tools_openai(body: dict) -> dict[str, dict]:
    return {t["function"]["name"]: t for t in body.get("tools", []) if t.get("type") == "function"}


async def test_openai_task_completes_with_server_answer(provider_stack, user, openai_server):
    openai_server.reply_text("Durable steps wait; / retries hum through the night; / the task completes.")
    task = await create(provider_stack, user, model="gpt-4o")

    done = await wait_status(provider_stack.http, task["task_id"], user.headers, {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed", (done, openai_server.requests)
    assert done["result"] == "Durable steps wait; / retries hum through the night; / the task completes."
    assert done["result_summary"] == done["result"]
    assert done["error"] is None and done["retry_count"] == 0
    assert done["model"] == "gpt-4o"

    [req] = openai_server.chat_requests()
    body = req.body
    assert body["model"] == "gpt-4o"
    assert body["stream"] is True
    assert req.headers["authorization"] == "Bearer sk-scripted-openai"
    tools = offered_tools_openai(body)
    # CONTRACT §6: a general agent is offered every tool, ask_user among them.
    assert set(tools) == {"read", "glob", "grep", "edit", "write", "bash", "todowrite", "ask_user"}
    params = tools["ask_user"]["function"]["parameters"]
    assert params["type"] == "object"
    assert params["properties"]["question"]["type"] == "string"
    # CONTRACT §12: a question, and optionally the choices and a schema for the answer.
    assert list(params["properties"]) == ["question", "options", "answer_schema"]
    assert params["required"] == ["question"]
    # The task itself reached the model: a system prompt, then the title and description.
    assert body["messages"][0]["role"] == "system"
    assert body["messages"][-1] == {"role": "user", "content": "Write a haiku\n\nAbout durable workflows."}


async def test_anthropic_task_completes_with_server_answer(provider_stack, user, anthropic_server):
    anthropic_server.reply_text("Here is the plan: first, second, third.", chunks=5)
    task = await create(provider_stack, user, model="claude-sonnet-4", title="Plan it", description="Three steps.")

    done = await wait_status(provider_stack.http, task["task_id"], user.headers, {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed", (done, anthropic_server.requests)
    assert done["result"] == "Here is the plan: first, second, third."
    assert done["model"] == "claude-sonnet-4"

    [req] = anthropic_server.message_requests()  # one request: nothing was retried
    body = req.body
    assert body["model"] == "claude-sonnet-4-20250514"
    assert body["stream"] is True
    # The SDK sends the key as x-api-key or, in newer releases, as a bearer token.
    assert "sk-ant-scripted" in (req.headers.get("x-api-key"), req.headers.get("authorization", "").removeprefix("Bearer "))
    assert body["system"].startswith("You are a CodeTether agent")
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Plan it\n\nThree steps."}]}]
    by_name = {t["name"]: t for t in body["tools"]}
    assert set(by_name) == {"read", "glob", "grep", "edit", "write", "bash", "todowrite", "ask_user"}
    tool = by_name["ask_user"]
    assert tool["input_schema"]["properties"]["question"]["type"] == "string"
    assert list(tool["input_schema"]["properties"]) == ["question", "options", "answer_schema"]


async def test_openai_ask_user_needs_input_and_reply_reaches_model(provider_stack, user, openai_server):
    openai_server.reply_ask_user("Which language should the haiku be in?", call_id="call_lang_1")
    openai_server.reply_text("Un haïku en français.")
    task = await create(provider_stack, user, model="gpt-4o")

    waiting = await wait_status(provider_stack.http, task["task_id"], user.headers, {"needs_input", "failed"}, timeout=60)
    assert waiting["status"] == "needs_input", waiting
    action = waiting["required_action"]
    assert action["kind"] == "question"
    assert action["prompt"] == "Which language should the haiku be in?"
    assert action["id"].startswith("act_") and action["asked_at"].endswith("Z")

    handle = provider_stack.client.get_workflow_handle(task["task_id"])
    accepted = await handle.execute_update(
        TaskWorkflow.provide_input, ProvideInputInput(message="French, please.", required_action_id=action["id"])
    )
    assert accepted.accepted is True

    done = await wait_status(provider_stack.http, task["task_id"], user.headers, {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed", done
    assert done["result"] == "Un haïku en français."
    assert done["required_action"] is None

    first, second = openai_server.chat_requests()
    assert len(openai_server.chat_requests()) == 2
    messages = second.body["messages"]
    # The model sees its own tool call, then the person's answer as that call's result.
    call_msg, tool_msg = messages[-2], messages[-1]
    assert call_msg["role"] == "assistant"
    [call] = call_msg["tool_calls"]
    assert call["id"] == "call_lang_1"
    assert call["function"]["name"] == "ask_user"
    assert json.loads(call["function"]["arguments"]) == {"question": "Which language should the haiku be in?"}
    assert tool_msg == {"role": "tool", "tool_call_id": "call_lang_1", "content": "French, please."}
    assert messages[: len(first.body["messages"])] == first.body["messages"]


async def test_anthropic_ask_user_reply_is_tool_result(provider_stack, user, anthropic_server):
    anthropic_server.reply_ask_user("How long?", call_id="toolu_len_1", text="One question first.")
    anthropic_server.reply_text("Short and sweet.")
    task = await create(provider_stack, user, model="claude-sonnet-4")

    waiting = await wait_status(provider_stack.http, task["task_id"], user.headers, {"needs_input", "failed"}, timeout=60)
    assert waiting["status"] == "needs_input", waiting
    assert waiting["required_action"]["prompt"] == "How long?"

    handle = provider_stack.client.get_workflow_handle(task["task_id"])
    await handle.execute_update(TaskWorkflow.provide_input, ProvideInputInput(message="Two lines."))
    done = await wait_status(provider_stack.http, task["task_id"], user.headers, {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed", done
    assert done["result"] == "Short and sweet."

    second = anthropic_server.message_requests()[1].body["messages"]
    assert second[-2] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "One question first."},
            {"type": "tool_use", "id": "toolu_len_1", "name": "ask_user", "input": {"question": "How long?"}},
        ],
    }
    assert second[-1] == {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_len_1", "content": "Two lines."}]}


async def test_provider_400_fails_task_with_clear_error(provider_stack, user, openai_server):
    openai_server.reply_error(400, "This model's maximum context length is 8 tokens.")
    task = await create(provider_stack, user, model="gpt-4o")

    done = await wait_status(provider_stack.http, task["task_id"], user.headers, {"completed", "failed"}, timeout=60)
    assert done["status"] == "failed", done
    # A request over the model's window can never succeed: its own stable code (CONTRACT §10).
    assert done["error"]["code"] == "context_length_exceeded"
    assert "400" in done["error"]["message"]
    assert "maximum context length" in done["error"]["message"]
    assert done["result"] is None
    assert done["retry_count"] == 0
    # A 4xx is not retried: the provider saw exactly one request.
    assert len(openai_server.chat_requests()) == 1


async def test_anthropic_400_fails_task(provider_stack, user, anthropic_server):
    anthropic_server.reply_error(400, "messages: roles must alternate")
    task = await create(provider_stack, user, model="claude-sonnet-4")
    done = await wait_status(provider_stack.http, task["task_id"], user.headers, {"completed", "failed"}, timeout=60)
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "provider_rejected"
    assert "400" in done["error"]["message"] and "roles must alternate" in done["error"]["message"]
    assert len(anthropic_server.message_requests()) == 1


async def test_provider_500_then_200_is_retried(provider_stack, user, openai_server):
    openai_server.reply_error(500, "upstream hiccup").reply_text("Second time lucky.")
    task = await create(provider_stack, user, model="gpt-4o")

    done = await wait_status(provider_stack.http, task["task_id"], user.headers, {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed", done
    assert done["result"] == "Second time lucky."
    assert done["retry_count"] == 1
    assert len(openai_server.chat_requests()) == 2


async def test_provider_429_is_retried(provider_stack, user, anthropic_server):
    anthropic_server.reply_error(429, "slow down").reply_text("Done after waiting.")
    task = await create(provider_stack, user, model="claude-sonnet-4")
    done = await wait_status(provider_stack.http, task["task_id"], user.headers, {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed", done
    assert done["result"] == "Done after waiting."
    assert done["retry_count"] == 1


async def test_model_without_credentials_is_refused_at_creation(provider_stack, user):
    r = await provider_stack.http.post(
        TASKS, json={"title": "t", "description": "d", "model": "grok-3"}, headers=user.headers
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "model_unavailable"

    models = (await provider_stack.http.get("/v1/automation/models", headers=user.headers)).json()["data"]
    by_name = {m["name"]: m for m in models}
    assert by_name["grok-3"]["available"] is False
    assert by_name["gpt-4o"]["available"] is True
    assert by_name["claude-sonnet-4"]["available"] is True

    listed = (await provider_stack.http.get(TASKS, headers=user.headers)).json()["data"]
    assert listed == []


async def test_unknown_model_is_refused_at_creation(provider_stack, user):
    r = await provider_stack.http.post(
        TASKS, json={"title": "t", "description": "d", "model": "gpt-17-ultra"}, headers=user.headers
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "unknown_model"
