"""Whole tasks on recorded real provider traffic: the API, Temporal, the worker and a models file
whose providers point at the loopback replay server (tests/support/replay_server.py).

Each recording is a complete exchange: a turn of tool calls (to tools this agent does not have,
so they are refused and the model is told) and a final answer. The task's ``usage.cost_usd``
must be the recorded token counts at the provider's published price.
"""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import running_stack, wait_status
from tests.support.replay_server import FIXTURES, replay

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
