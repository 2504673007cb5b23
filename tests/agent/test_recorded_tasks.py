"""Whole tasks on recorded real provider traffic: the API, Temporal, the worker and a models file
whose providers point at the loopback replay server (tests/support/replay_server.py).

Each recording is a complete exchange: a turn of tool calls (to tools this agent does not have,
so they are refused and the model is told) and a final answer. The task's ``usage.cost_usd``
must be the recorded token counts at the provider's published price.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import yaml

from tests.conftest import running_stack, wait_status
from tests.support.replay_server import FIXTURES, Recorded, ReplayServer, load_cassette, replay

TASKS = "/v1/automation/tasks"

# Published prices per million tokens (input, output) on the day of writing, from the providers'
# own price pages; genai-prices must agree within 1 %.
PUBLISHED = {"gpt-4o-mini": (0.15, 0.60), "claude-haiku-4-5": (1.00, 5.00)}


def recorded_usage(cassette: str) -> tuple[int, int]:
    data = yaml.safe_load((FIXTURES / f"{cassette}.yaml").read_text())
    tokens_in = tokens_out = 0
    for interaction in data["interactions"]:
        resp = interaction["response"]
        if "parsed_body" in resp:
            usage = resp["parsed_body"]["usage"]
            tokens_in += usage.get("input_tokens", usage.get("prompt_tokens", 0))
            tokens_out += usage.get("output_tokens", usage.get("completion_tokens", 0))
        else:
            for line in resp["body"]["string"].splitlines():
                if line.startswith("data: {") and '"usage":{' in line:
                    usage = json.loads(line[6:])["usage"]
                    tokens_in += usage["prompt_tokens"]
                    tokens_out += usage["completion_tokens"]
    return tokens_in, tokens_out


@pytest.mark.parametrize(
    ("cassette", "kind", "provider_model"),
    [("openai/run_stream_sync_streams_real_model", "openai", "gpt-4o-mini"),
     ("anthropic/multiple_parallel_tool_calls", "anthropic", "claude-haiku-4-5")],
)
async def test_recorded_task_completes_with_its_cost(settings, temporal_env, db, make_user, tmp_path, monkeypatch,
                                                     cassette, kind, provider_model):
    with replay(cassette) as srv:
        models = {
            "providers": {kind: {"kind": kind, "base_url": srv.base_url + ("/v1" if kind == "openai" else ""),
                                 "api_key_env": "RECORDED_KEY"}},
            "models": {"recorded": {"provider": kind, "model": provider_model}},
        }
        path = tmp_path / "models.yaml"
        path.write_text(yaml.safe_dump(models))
        settings.models_file = path
        monkeypatch.setenv("RECORDED_KEY", "sk-recorded")
        user = await make_user()
        async with running_stack(settings, temporal_env.client, db) as stack:
            r = await stack.http.post(TASKS, json={"title": "Recorded", "description": "Answer it", "model": "recorded"},
                                      headers=user.headers)
            assert r.status_code == 201, r.text
            task = await wait_status(stack.http, r.json()["task_id"], user.headers, {"completed", "failed"}, timeout=120)
    assert task["status"] == "completed", task
    assert task["result"]
    tokens_in, tokens_out = recorded_usage(cassette)
    usage = task["usage"]
    assert (usage["input_tokens"], usage["output_tokens"]) == (tokens_in, tokens_out)
    price_in, price_out = PUBLISHED[provider_model]
    expected = (tokens_in * price_in + tokens_out * price_out) / 1_000_000
    assert usage["cost_usd"] == pytest.approx(expected, rel=0.01)
    # The refused calls went back to the model as tool results (no call ran, none was lost).
    assert len(srv.requests) == 2


async def test_a_429_with_retry_after_is_retried_no_sooner_than_asked(settings, temporal_env, db, make_user, tmp_path,
                                                                       monkeypatch):
    rate_limited = load_cassette("openrouter/openrouter_errors_raised")[0]
    # Derived: the recorded OpenRouter 429 with a Retry-After of 3 s (the recording carries none),
    # then the recorded OpenAI exchange.
    derived = Recorded(rate_limited.status, {**rate_limited.headers, "retry-after": "3"}, rate_limited.body)
    with ReplayServer([derived, *load_cassette("openai/run_stream_sync_streams_real_model")]) as srv:
        path = tmp_path / "models.yaml"
        path.write_text(yaml.safe_dump({
            "providers": {"openai": {"kind": "openai", "base_url": srv.base_url + "/v1", "api_key_env": "RECORDED_KEY"}},
            "models": {"recorded": {"provider": "openai", "model": "gpt-4o-mini"}}}))
        monkeypatch.setenv("RECORDED_KEY", "sk-recorded")
        settings.models_file = path
        user = await make_user()
        async with running_stack(settings, temporal_env.client, db) as stack:
            r = await stack.http.post(TASKS, json={"title": "Recorded", "description": "Answer it", "model": "recorded"},
                                      headers=user.headers)
            task = await wait_status(stack.http, r.json()["task_id"], user.headers, {"completed", "failed"}, timeout=120)
    assert task["status"] == "completed", task
    assert task["retry_count"] == 1
    assert srv.requests[1]["at"] - srv.requests[0]["at"] >= 3.0


class StrictAnthropic:
    """Scripted Anthropic messages server that refuses what the real API refuses (a ``tool_use``
    without its ``tool_result`` in the next user message, an empty text block) with the API's
    400, and otherwise asks a question first, then answers."""

    def __init__(self) -> None:
        self.refused: list[str] = []
        self.calls = 0

    def __call__(self, body: dict) -> Recorded:
        problem = self._invalid(body["messages"])
        if problem:
            self.refused.append(problem)
            return Recorded(400, {"content-type": "application/json"}, json.dumps(
                {"type": "error", "error": {"type": "invalid_request_error", "message": problem}}).encode())
        self.calls += 1
        if self.calls == 1:
            content = [{"type": "tool_use", "id": "toolu_q", "name": "ask_user", "input": {"question": "Which color?"}}]
            stop = "tool_use"
        else:
            content = [{"type": "text", "text": "Blue it is."}]
            stop = "end_turn"
        return Recorded(200, {"content-type": "application/json"}, json.dumps({
            "id": f"msg_{self.calls}", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
            "content": content, "stop_reason": stop, "usage": {"input_tokens": 20, "output_tokens": 5}}).encode())

    @staticmethod
    def _invalid(messages: list[dict]) -> str | None:
        for i, m in enumerate(messages):
            for block in m["content"] if isinstance(m["content"], list) else []:
                if block.get("type") == "text" and not block.get("text"):
                    return f"messages.{i}: text content blocks must be non-empty"
                if block.get("type") == "tool_use":
                    following = messages[i + 1]["content"] if i + 1 < len(messages) else []
                    ids = {b.get("tool_use_id") for b in following if isinstance(b, dict)}
                    if block["id"] not in ids:
                        return (f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                                f"immediately after: {block['id']}")
        return None


async def test_a_follow_up_after_an_unanswered_question_is_accepted(settings, temporal_env, db, make_user, tmp_path,
                                                                    monkeypatch):
    strict = StrictAnthropic()
    with ReplayServer([], responder=strict) as srv:
        path = tmp_path / "models.yaml"
        path.write_text(yaml.safe_dump({
            "providers": {"anthropic": {"kind": "anthropic", "base_url": srv.base_url, "api_key_env": "RECORDED_KEY"}},
            "models": {"claude": {"provider": "anthropic", "model": "claude-haiku-4-5"}}}))
        monkeypatch.setenv("RECORDED_KEY", "sk-recorded")
        settings.models_file = path
        user = await make_user()
        async with running_stack(settings, temporal_env.client, db) as stack:
            r = await stack.http.post(TASKS, json={"title": "Paint", "description": "Paint the fence", "model": "claude",
                                                   "input_timeout_seconds": 1}, headers=user.headers)
            task_id = r.json()["task_id"]
            ended = await wait_status(stack.http, task_id, user.headers, {"completed", "failed"}, timeout=60)
            assert ended["status"] == "failed" and ended["error"]["code"] == "input_timeout", ended
            r = await stack.http.post(f"{TASKS}/{task_id}/messages", json={"message": "Blue, please."}, headers=user.headers)
            assert r.status_code in (200, 201, 202), r.text
            done = await _until_completed(stack, task_id, user)
    assert strict.refused == [], strict.refused
    assert done["status"] == "completed" and done["result"] == "Blue it is.", done


async def _until_completed(stack, task_id, user):
    # The follow-up is a new run of the same task: wait for it to complete (the old run's
    # "failed" is still the status until the new run starts).
    for _ in range(120):
        r = await stack.http.get(f"{TASKS}/{task_id}", headers=user.headers)
        if r.json()["status"] == "completed":
            return r.json()
        await asyncio.sleep(0.5)
    return r.json()


def _models_file(tmp_path, base_url: str, kind: str = "openai", provider_model: str = "gpt-4o-mini"):
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump({
        "providers": {kind: {"kind": kind, "base_url": base_url, "api_key_env": "RECORDED_KEY"}},
        "models": {"recorded": {"provider": kind, "model": provider_model}}}))
    return path


async def _run_task(settings, temporal_env, db, make_user, monkeypatch, models_file) -> dict:
    monkeypatch.setenv("RECORDED_KEY", "sk-recorded")
    settings.models_file = models_file
    user = await make_user()
    async with running_stack(settings, temporal_env.client, db) as stack:
        r = await stack.http.post(TASKS, json={"title": "Recorded", "description": "Answer it", "model": "recorded"},
                                  headers=user.headers)
        assert r.status_code == 201, r.text
        return await wait_status(stack.http, r.json()["task_id"], user.headers, {"completed", "failed"}, timeout=120)


async def test_an_error_that_can_never_succeed_fails_the_task_at_once(settings, temporal_env, db, make_user, tmp_path,
                                                                      monkeypatch):
    with replay("openrouter/openrouter_stream_error") as srv:
        task = await _run_task(settings, temporal_env, db, make_user, monkeypatch, _models_file(tmp_path, srv.base_url + "/v1"))
    assert task["status"] == "failed", task
    assert task["error"]["code"] == "provider_rejected" and "Token limit reached" in task["error"]["message"]
    assert task["retry_count"] == 0 and len(srv.requests) == 1


async def test_an_answer_that_stays_cut_is_never_reported_completed(settings, temporal_env, db, make_user, tmp_path,
                                                                    monkeypatch):
    # Scripted (the recordings have no answer cut at the limit): every reply stops at `length`.
    def cut(body: dict) -> Recorded:
        chunks = [{"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                   "choices": [{"index": 0, "delta": {"content": "and so on "}, "finish_reason": None}]},
                  {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                   "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}]
        return Recorded(200, {"content-type": "text/event-stream"},
                        "".join(f"data: {json.dumps(c)}\n\n" for c in chunks).encode() + b"data: [DONE]\n\n")

    with ReplayServer([], responder=cut) as srv:
        task = await _run_task(settings, temporal_env, db, make_user, monkeypatch, _models_file(tmp_path, srv.base_url + "/v1"))
    assert task["status"] == "failed" and task["error"]["code"] == "output_truncated", task
    assert task["result"] is None


async def test_context_length_error_fails_at_once_with_its_code(settings, temporal_env, db, make_user, tmp_path, monkeypatch):
    # Scripted from OpenAI's documented error body.
    body = json.dumps({"error": {"message": "This model's maximum context length is 8192 tokens. However, your messages "
                                            "resulted in 9100 tokens.", "type": "invalid_request_error",
                                 "param": "messages", "code": "context_length_exceeded"}}).encode()
    with ReplayServer([Recorded(400, {"content-type": "application/json"}, body)]) as srv:
        task = await _run_task(settings, temporal_env, db, make_user, monkeypatch, _models_file(tmp_path, srv.base_url + "/v1"))
    assert task["status"] == "failed" and task["error"]["code"] == "context_length_exceeded", task
    assert "maximum context length is 8192" in task["error"]["message"] and len(srv.requests) == 1
