"""kill -9 of the worker while a model turn is reserved and in flight: the provider (a real recording
on the loopback replay server) holds its answer, the worker dies, another worker retries the turn.
The turn's charge (one per turn, ``codetether/budgets/ledger.py``) is settled once, never twice,
and nothing stays reserved."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import yaml
from sqlalchemy import select

from codetether.core.models import BudgetCharge
from tests.agent.test_recorded_tasks import PUBLISHED
from tests.chaos.conftest import wait_task
from tests.support.replay_server import Conversation, ReplayServer

pytestmark = pytest.mark.chaos

# claude-haiku-4-5 (tests/fixtures/provider_traffic/SOURCES.md): four tool calls (423 tokens in,
# 202 out), then the answer (771 in, 77 out), at the published price (genai-prices, no override).
RECORDED = "anthropic/multiple_parallel_tool_calls"
TURNS = [(423, 202), (771, 77)]
SCOPES = ["tasks:read", "tasks:write", "messages:write", "account:manage"]


def turn_price(tokens_in: int, tokens_out: int) -> float:
    price_in, price_out = PUBLISHED["claude-haiku-4-5"]
    return (tokens_in * price_in + tokens_out * price_out) / 1_000_000


async def charges_of(db, task_id: str) -> list[BudgetCharge]:
    async with db.session() as s:
        return list((await s.execute(select(BudgetCharge).where(BudgetCharge.task_id == task_id)
                                     .order_by(BudgetCharge.created_at))).scalars())


async def test_worker_killed_during_a_reserved_turn_settles_it_once(cluster, make_user, db, tmp_path):
    # The first request (the task's first turn) gets no answer until released: it is in flight.
    with ReplayServer([], responder=Conversation(RECORDED), hold=1) as srv:
        models = tmp_path / "models.yaml"
        models.write_text(yaml.safe_dump({
            "providers": {"anthropic": {"kind": "anthropic", "base_url": srv.base_url, "api_key_env": "RECORDED_KEY"}},
            "models": {"recorded": {"provider": "anthropic", "model": "claude-haiku-4-5", "max_output_tokens": 4096}}}))
        cluster.env.update(CODETETHER_MODELS_FILE=str(models), RECORDED_KEY="sk-recorded")
        await asyncio.to_thread(cluster.start_temporal)
        _api, port = await asyncio.to_thread(cluster.start_api)
        first = await asyncio.to_thread(cluster.start_worker)
        user = await make_user(scopes=SCOPES)

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            r = await http.put("/v1/automation/budget", json={"limit_usd": 1, "on_exhaust": "ask"}, headers=user.headers)
            assert r.status_code == 200, r.text
            r = await http.post("/v1/automation/tasks", json={"title": "Survive", "description": "Answer it",
                                                              "model": "recorded"}, headers=user.headers)
            assert r.status_code == 201, r.text
            task_id = r.json()["task_id"]

            # The turn reserved its charge and its request reached the provider.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 90
            while not (srv.requests and [c for c in await charges_of(db, task_id) if c.cost_usd is None]):
                assert loop.time() < deadline, (srv.requests, await charges_of(db, task_id))
                await asyncio.sleep(0.2)
            [held] = await charges_of(db, task_id)
            reservation = held.reserved_usd
            during = (await http.get("/v1/automation/budget", headers=user.headers)).json()
            assert during["reserved_usd"] == pytest.approx(reservation) and during["spent_usd"] == 0

            await asyncio.to_thread(first.kill9)
            srv.release()  # the held answer now goes to a dead connection
            await asyncio.to_thread(cluster.start_worker)
            done = await wait_task(http, task_id, user.headers, lambda t: t["status"] in ("completed", "failed"),
                                   timeout=180, what="completed")
            assert done["status"] == "completed", done
            budget = (await http.get("/v1/automation/budget", headers=user.headers)).json()

    # The first turn reached the provider twice (the killed attempt and its retry), then the second turn.
    assert len(srv.requests) == 3, [len(q["body"]["messages"]) for q in srv.requests]
    charges = await charges_of(db, task_id)
    print(f"chaos budget: reservation ${reservation:.6f}, charges "
          f"{[(c.reserved_usd, c.cost_usd) for c in charges]}, budget {budget}")
    # One row per turn: the killed turn's charge is the one its retry settled, at one turn's price.
    assert [c.id for c in charges].count(held.id) == 1 and len(charges) == 2
    assert all(c.cost_usd is not None and c.settled_at is not None for c in charges)
    assert [c.cost_usd for c in charges] == pytest.approx([turn_price(*t) for t in TURNS])
    assert [(c.input_tokens, c.output_tokens) for c in charges] == TURNS
    settled = sum(c.cost_usd for c in charges)
    assert budget["reserved_usd"] == 0
    assert budget["spent_usd"] == pytest.approx(settled)
    assert done["usage"]["cost_usd"] == pytest.approx(settled)
