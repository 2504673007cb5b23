"""A long coding run on a model with a small context window finishes: older tool outputs are
pruned and the conversation is summarised durably, every request fits the window, and the run's
history replays.

The model is scripted (no public recording has a 150-turn run): an OpenAI-compatible server that
writes a file once, reads it back 150 times (each output about 750 tokens) and then answers, and
that answers the compaction's summary requests (sent without tools) with a summary.
"""

from __future__ import annotations

import json

import pytest
import yaml
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from codetether.agent.compaction import SUMMARY_INTRO
from codetether.worker import all_workflows
from tests.conftest import running_stack, wait_status
from tests.support.replay_server import Recorded, ReplayServer

WINDOW = 8000
READS = 150
CONTENT = "\n".join(f"line {i}: " + "lorem ipsum dolor sit amet " * 4 for i in range(25))


def _sse(delta: dict, finish: str) -> bytes:
    chunks = [{"choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
              {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}]
    return "".join(f"data: {json.dumps({'id': 'c', 'object': 'chat.completion.chunk', 'created': 1, 'model': 'small', **c})}\n\n"
                   for c in chunks).encode() + b"data: [DONE]\n\n"


class LongRun:
    def __init__(self) -> None:
        self.turns = 0
        self.summaries = 0
        self.largest = 0

    def __call__(self, body: dict) -> Recorded:
        # What the request would cost a real model: its whole JSON body, four characters a token.
        self.largest = max(self.largest, len(json.dumps(body)) // 4)
        events = {"content-type": "text/event-stream"}
        if not body.get("tools"):
            self.summaries += 1
            return Recorded(200, events, _sse({"content": f"Wrote big.txt, then read it {self.turns - 1} times. "
                                                          "Next: keep reading it until 150 reads, then answer."}, "stop"))
        self.turns += 1
        n = self.turns
        if n == 1:
            call = {"name": "write", "arguments": json.dumps({"filePath": "big.txt", "content": CONTENT})}
        elif n <= READS + 1:
            call = {"name": "read", "arguments": json.dumps({"filePath": "big.txt"})}
        else:
            return Recorded(200, events, _sse({"content": f"Read big.txt {READS} times."}, "stop"))
        delta = {"tool_calls": [{"index": 0, "id": f"call_{n}", "type": "function", "function": call}]}
        return Recorded(200, events, _sse(delta, "tool_calls"))


@pytest.mark.e2e
async def test_a_150_turn_run_on_an_8k_window_finishes_compacted(settings, temporal_env, db, make_user, tmp_path, monkeypatch):
    script = LongRun()
    with ReplayServer([], responder=script) as srv:
        path = tmp_path / "models.yaml"
        path.write_text(yaml.safe_dump({
            "providers": {"local": {"kind": "openai", "base_url": srv.base_url + "/v1", "api_key_env": "SMALL_KEY"}},
            "models": {"small": {"provider": "local", "model": "small", "context_window": WINDOW, "max_output_tokens": 1000,
                                 "pricing": {"input_per_mtok_usd": 1, "output_per_mtok_usd": 2}}},
        }))
        monkeypatch.setenv("SMALL_KEY", "sk-small")
        settings.models_file = path
        settings.agent_max_turns = 300
        user = await make_user()
        async with running_stack(settings, temporal_env.client, db) as stack:
            r = await stack.http.post("/v1/automation/tasks", json={
                "title": "Read it many times", "description": "Read big.txt 150 times.", "model": "small",
                "agent_type": "build", "max_turns": 300}, headers=user.headers)
            assert r.status_code == 201, r.text
            task = await wait_status(stack.http, r.json()["task_id"], user.headers, {"completed", "failed"}, timeout=600)
    assert task["status"] == "completed", task
    assert task["result"] == f"Read big.txt {READS} times."
    assert task["usage"]["turns"] == READS + 2 and task["usage"]["tool_calls"] == READS + 1
    # Every request fitted the window, and it took summaries to get there.
    print(f"largest request ~{script.largest} tokens, {script.summaries} summaries, {len(srv.requests)} requests")
    assert script.largest < WINDOW, script.largest
    assert script.summaries >= 1
    last = srv.requests[-1]["body"]["messages"]
    assert any(m["role"] == "user" and m["content"].startswith(SUMMARY_INTRO) for m in last)
    assert "Read big.txt 150 times." in last[1]["content"]  # the task's own message is kept
    # The run's history (continue-as-new included) replays on the current code.
    handle = temporal_env.client.get_workflow_handle(task["task_id"])
    replayer = Replayer(workflows=all_workflows(), data_converter=pydantic_data_converter)
    async for history in handle.fetch_history_for_each_run() if hasattr(handle, "fetch_history_for_each_run") else _one(handle):
        await replayer.replay_workflow(history)


async def _one(handle):
    yield await handle.fetch_history()
