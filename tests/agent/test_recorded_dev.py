"""Recorded real provider traffic through ``codetether dev`` as a user runs it: its own Temporal
dev server, worker and API processes, with ``CODETETHER_MODELS_FILE`` pointing two models at the
loopback replay server."""

from __future__ import annotations

import os
import re

import httpx
import pytest
import yaml

from tests.agent.test_recorded_tasks import PUBLISHED, recorded_usage
from tests.production.procs import BIN, Proc, free_port, port_open, wait_until
from tests.support.replay_server import ReplayServer, load_cassette

pytestmark = pytest.mark.e2e

OPENAI = "openai/run_stream_sync_streams_real_model"
ANTHROPIC = "anthropic/multiple_parallel_tool_calls"


async def test_recorded_tasks_through_codetether_dev(tmp_path):
    with ReplayServer(load_cassette(OPENAI)) as openai_srv, ReplayServer(load_cassette(ANTHROPIC)) as anthropic_srv:
        models = tmp_path / "models.yaml"
        models.write_text(yaml.safe_dump({
            "providers": {
                "openai": {"kind": "openai", "base_url": openai_srv.base_url + "/v1", "api_key_env": "RECORDED_KEY"},
                "anthropic": {"kind": "anthropic", "base_url": anthropic_srv.base_url, "api_key_env": "RECORDED_KEY"},
            },
            "models": {"mini": {"provider": "openai", "model": "gpt-4o-mini"},
                       "haiku": {"provider": "anthropic", "model": "claude-haiku-4-5"}},
        }))
        api, temporal, ui = free_port(), free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CODETETHER_")}
        env.update(CODETETHER_MODELS_FILE=str(models), RECORDED_KEY="sk-recorded")
        proc = Proc("codetether-dev", [str(BIN / "codetether"), "dev", "--api-port", str(api), "--temporal-port",
                                       str(temporal), "--ui-port", str(ui), "--data-dir", str(tmp_path / "data")],
                    env, tmp_path / "dev.log").start()
        try:
            wait_until(lambda: "API key" in proc.tail(100_000) and port_open(api), 180, "codetether dev ready", proc)
            key = re.search(r"API key\s+(ct_\S+)", proc.tail(100_000)).group(1)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api}", headers={"Authorization": f"Bearer {key}"},
                                         timeout=60) as http:
                listed = {m["id"]: m for m in (await http.get("/v1/automation/models")).json()["data"]}
                assert listed["mini"]["pricing"]["input_per_mtok_usd"] == pytest.approx(PUBLISHED["gpt-4o-mini"][0])
                done = {}
                for model in ("mini", "haiku"):
                    r = await http.post("/v1/automation/tasks", json={"title": "Recorded", "description": "Answer it",
                                                                       "model": model})
                    assert r.status_code == 201, r.text
                    task_id = r.json()["task_id"]
                    done[model] = (await http.get(f"/v1/automation/tasks/{task_id}", params={"wait": 60})).json()
        finally:
            proc.stop(timeout=30)
    for model, cassette, provider_model in (("mini", OPENAI, "gpt-4o-mini"), ("haiku", ANTHROPIC, "claude-haiku-4-5")):
        task = done[model]
        assert task["status"] == "completed", task
        tokens_in, tokens_out = recorded_usage(cassette)
        price_in, price_out = PUBLISHED[provider_model]
        assert task["usage"]["cost_usd"] == pytest.approx((tokens_in * price_in + tokens_out * price_out) / 1e6, rel=0.01)
