"""Budgets through the real API, Temporal and worker (CONTRACT §13).

A models file adds ``demo-priced``: the offline demo model with a (steep) price, so its turns
cost money and every cap can be reached without a provider. The concurrent test runs a real
provider's recording on the loopback replay server (tests/support/replay_server.py) at the model's
published price.
"""

from __future__ import annotations

import asyncio
import csv
import io

import pytest
import pytest_asyncio
import yaml

from tests.agent.test_recorded_tasks import PUBLISHED, recorded_usage
from tests.conftest import make_settings, running_stack, wait_status
from tests.support.replay_server import Conversation, ReplayServer

TASKS = "/v1/automation/tasks"
MODELS = """
providers:
  offline: {kind: demo}
models:
  demo-priced: {provider: offline, max_output_tokens: 1000, pricing: {input_per_mtok_usd: 100, output_per_mtok_usd: 100}}
"""
ALL_SCOPES = ["tasks:read", "tasks:write", "messages:write", "account:manage"]


@pytest_asyncio.fixture
async def priced(temporal_address, database_url, tmp_path, temporal_env, db):
    models = tmp_path / "models.yaml"
    models.write_text(MODELS)
    settings = make_settings(temporal_address, database_url, tmp_path, models_file=models)
    async with running_stack(settings, temporal_env.client, db) as s:
        yield s


async def create(stack, user, **body):
    body = {"title": "Priced", "description": "Summarize", "model": "demo-priced", **body}
    return await stack.http.post(TASKS, json=body, headers=user.headers)


async def test_budget_defaults_and_update(priced, make_user):
    user = await make_user(scopes=ALL_SCOPES)
    r = await priced.http.get("/v1/automation/budget", headers=user.headers)
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["period"] == "month" and b["limit_usd"] is None and b["remaining_usd"] is None
    assert b["spent_usd"] == 0 and b["reserved_usd"] == 0 and b["on_exhaust"] == "ask"
    assert b["period_start"].endswith("Z") and b["period_start"] < b["period_end"]
    r = await priced.http.put("/v1/automation/budget", json={"limit_usd": 5, "on_exhaust": "fail"}, headers=user.headers)
    assert r.status_code == 200 and r.json()["limit_usd"] == 5 and r.json()["remaining_usd"] == 5
    assert r.json()["on_exhaust"] == "fail"
    reader = await make_user(scopes=["tasks:read", "tasks:write"])
    r = await priced.http.put("/v1/automation/budget", json={"limit_usd": 5}, headers=reader.headers)
    assert r.status_code == 403
    r = await priced.http.put("/v1/automation/budget", json={"limit_usd": -1}, headers=user.headers)
    assert r.status_code == 422


async def test_spend_is_settled_and_usage_adds_up(priced, make_user):
    user = await make_user(scopes=ALL_SCOPES)
    ids = []
    for tag in ("alpha", "beta"):
        r = await create(priced, user, tags=[tag])
        assert r.status_code == 201, r.text
        ids.append(r.json()["task_id"])
    costs = []
    for task_id in ids:
        done = await wait_status(priced.http, task_id, user.headers, {"completed", "failed"})
        assert done["status"] == "completed", done
        assert done["usage"]["cost_usd"] > 0
        costs.append(done["usage"]["cost_usd"])
    b = (await priced.http.get("/v1/automation/budget", headers=user.headers)).json()
    assert b["spent_usd"] == pytest.approx(sum(costs)) and b["reserved_usd"] == 0
    by_tag = (await priced.http.get("/v1/automation/usage", params={"group_by": "tag"}, headers=user.headers)).json()["data"]
    assert {row["key"]: row["cost_usd"] for row in by_tag} == pytest.approx({"alpha": costs[0], "beta": costs[1]})
    by_model = (await priced.http.get("/v1/automation/usage", params={"group_by": "model"}, headers=user.headers)).json()["data"]
    assert [(r["key"], r["tasks"]) for r in by_model] == [("demo-priced", 2)]
    r = await priced.http.get("/v1/automation/usage", params={"group_by": "day", "format": "csv"}, headers=user.headers)
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert sum(float(row["cost_usd"]) for row in rows) == pytest.approx(sum(costs))
    assert sum(int(row["tasks"]) for row in rows) == 2


async def test_a_turn_past_max_cost_usd_is_refused_before_it_runs(priced, make_user):
    user = await make_user(scopes=ALL_SCOPES)
    await priced.http.put("/v1/automation/budget", json={"limit_usd": None, "on_exhaust": "fail"}, headers=user.headers)
    r = await create(priced, user, max_cost_usd=0.01)
    assert r.status_code == 201 and r.json()["max_cost_usd"] == 0.01
    done = await wait_status(priced.http, r.json()["task_id"], user.headers, {"completed", "failed"})
    assert done["status"] == "failed" and done["error"]["code"] == "budget_exceeded", done
    assert "max_cost_usd" in done["error"]["message"]
    b = (await priced.http.get("/v1/automation/budget", headers=user.headers)).json()
    assert b["spent_usd"] == 0 and b["reserved_usd"] == 0


async def test_a_spent_month_refuses_new_tasks_with_402(priced, make_user):
    user = await make_user(scopes=ALL_SCOPES)
    r = await create(priced, user)
    await wait_status(priced.http, r.json()["task_id"], user.headers, {"completed", "failed"})
    spent = (await priced.http.get("/v1/automation/budget", headers=user.headers)).json()["spent_usd"]
    assert spent > 0
    await priced.http.put("/v1/automation/budget", json={"limit_usd": spent, "on_exhaust": "fail"}, headers=user.headers)
    r = await create(priced, user)
    assert r.status_code == 402, r.text
    assert r.headers["content-type"].startswith("application/problem+json") and r.json()["code"] == "budget_exhausted"
    assert (await priced.http.get(TASKS, headers=user.headers)).json()["data"][0]["task_id"] != r.json().get("task_id")
    # A bigger limit lets the next task start, and its turn is refused once the month would pass it.
    await priced.http.put("/v1/automation/budget", json={"limit_usd": spent + 0.0001, "on_exhaust": "fail"}, headers=user.headers)
    r = await create(priced, user)
    assert r.status_code == 201
    done = await wait_status(priced.http, r.json()["task_id"], user.headers, {"completed", "failed"})
    assert done["status"] == "failed" and done["error"]["code"] == "budget_exceeded"
    assert "monthly budget" in done["error"]["message"]


async def answer(stack, user, task: dict, **body):
    action = task["required_action"]
    return await stack.http.post(f"{TASKS}/{task['task_id']}/input", json={"required_action_id": action["id"], **body},
                                 headers=user.headers)


async def test_a_task_asks_before_passing_its_cap_and_approval_raises_it(priced, make_user):
    user = await make_user(scopes=ALL_SCOPES)
    r = await create(priced, user, max_cost_usd=0.01)
    task_id = r.json()["task_id"]
    waiting = await wait_status(priced.http, task_id, user.headers, {"needs_input", "failed", "completed"})
    assert waiting["status"] == "needs_input", waiting
    action = waiting["required_action"]
    assert action["kind"] == "budget" and "max_cost_usd" in action["prompt"]
    assert action["answer_schema"]["properties"]["add_usd"]["type"] == "number"
    # A decision is required; a bad answer is refused and the task keeps waiting.
    assert (await answer(priced, user, waiting, message="ok")).status_code == 422
    assert (await answer(priced, user, waiting, decision="approve", answer={"add_usd": "lots"})).status_code == 422
    r = await answer(priced, user, waiting, decision="approve", answer={"add_usd": 10})
    assert r.status_code in (200, 202), r.text
    done = await wait_status(priced.http, task_id, user.headers, {"completed", "failed"})
    assert done["status"] == "completed", done
    assert done["max_cost_usd"] == pytest.approx(10.01)
    assert 0 < done["usage"]["cost_usd"] <= 10.01


async def test_rejecting_the_budget_question_fails_the_task(priced, make_user):
    user = await make_user(scopes=ALL_SCOPES)
    await priced.http.put("/v1/automation/budget", json={"limit_usd": 0.001, "on_exhaust": "ask"}, headers=user.headers)
    r = await create(priced, user)
    task_id = r.json()["task_id"]
    waiting = await wait_status(priced.http, task_id, user.headers, {"needs_input", "failed", "completed"})
    assert waiting["status"] == "needs_input" and waiting["required_action"]["kind"] == "budget", waiting
    assert "monthly budget" in waiting["required_action"]["prompt"]
    r = await answer(priced, user, waiting, decision="reject", message="too expensive")
    assert r.status_code in (200, 202), r.text
    done = await wait_status(priced.http, task_id, user.headers, {"completed", "failed"})
    assert done["status"] == "failed" and done["error"]["code"] == "budget_exceeded"
    b = (await priced.http.get("/v1/automation/budget", headers=user.headers)).json()
    assert b["limit_usd"] == 0.001 and b["spent_usd"] == 0


async def test_a_retried_turn_reuses_its_one_charge(db, make_user):
    from sqlalchemy import func, select

    from codetether.budgets import ledger
    from codetether.core.config import Settings
    from codetether.core.models import BudgetCharge

    user = await make_user()
    settings = Settings()
    key = "task_x:run_x:3"
    first = await ledger.reserve(db, settings, "task_x", user.user_id, "demo-priced", 0.5, turn_key=key)
    await ledger.settle(db, first, 0.0)  # the attempt died before any tokens were counted
    again = await ledger.reserve(db, settings, "task_x", user.user_id, "demo-priced", 0.4, turn_key=key)
    assert again == first
    await ledger.settle(db, again, 0.25, 100, 20)
    await ledger.settle(db, again, 9.0)  # a late duplicate settlement changes nothing
    async with db.session() as s:
        rows = (await s.execute(select(BudgetCharge).where(BudgetCharge.user_id == user.user_id))).scalars().all()
        assert [(r.cost_usd, r.input_tokens, r.output_tokens) for r in rows] == [(0.25, 100, 20)]
        assert (await s.execute(select(func.count()).select_from(BudgetCharge).where(BudgetCharge.id == first))).scalar() == 1


# A recording of claude-haiku-4-5 (tests/fixtures/provider_traffic/SOURCES.md): a turn of four tool
# calls (423 tokens in, 202 out), then the answer (771 in, 77 out). At the published $1/$5 per
# million tokens, from genai-prices with no override, a task costs $0.002589 and twenty cost $0.0518:
# more than a $0.05 budget, so some must stop. A turn reserves its request's estimate plus the
# 4,096 output tokens the recorded request allowed (about $0.021), so two turns fit in flight at once.
RECORDED = "anthropic/multiple_parallel_tool_calls"


def recorded_models(base_url: str) -> dict:
    return {"providers": {"anthropic": {"kind": "anthropic", "base_url": base_url, "api_key_env": "RECORDED_KEY"}},
            "models": {"recorded": {"provider": "anthropic", "model": "claude-haiku-4-5", "max_output_tokens": 4096}}}


@pytest_asyncio.fixture
async def recorded(temporal_address, database_url, tmp_path, temporal_env, db, monkeypatch):
    with ReplayServer([], responder=Conversation(RECORDED)) as srv:
        models = tmp_path / "models.yaml"
        models.write_text(yaml.safe_dump(recorded_models(srv.base_url)))
        monkeypatch.setenv("RECORDED_KEY", "sk-recorded")
        settings = make_settings(temporal_address, database_url, tmp_path, models_file=models)
        async with running_stack(settings, temporal_env.client, db) as s:
            yield s


async def test_concurrent_recorded_tasks_stop_at_the_monthly_limit_and_one_approval_resumes_a_task(recorded, make_user):
    from sqlalchemy import func, select

    from codetether.core.models import BudgetCharge

    tokens_in, tokens_out = recorded_usage(RECORDED)
    price_in, price_out = PUBLISHED["claude-haiku-4-5"]
    task_cost = (tokens_in * price_in + tokens_out * price_out) / 1_000_000
    user = await make_user(scopes=ALL_SCOPES)
    limit = 0.05
    await recorded.http.put("/v1/automation/budget", json={"limit_usd": limit, "on_exhaust": "ask"}, headers=user.headers)
    created = await asyncio.gather(*(create(recorded, user, title=f"Batch {i}", model="recorded") for i in range(20)))
    ids = [r.json()["task_id"] for r in created if r.status_code == 201]
    assert len(ids) == 20, [r.text for r in created if r.status_code != 201]
    ended = {t: await wait_status(recorded.http, t, user.headers, {"needs_input", "completed", "failed"}, timeout=180)
             for t in ids}
    stopped = [t for t, body in ended.items() if body["status"] == "needs_input"]
    completed = [t for t, body in ended.items() if body["status"] == "completed"]
    assert stopped and all(ended[t]["required_action"]["kind"] == "budget" for t in stopped), ended
    assert len(stopped) + len(completed) == 20, [b for b in ended.values() if b["status"] == "failed"]
    # A completed task cost its recorded tokens at the published price.
    for t in completed:
        assert ended[t]["usage"]["cost_usd"] == pytest.approx(task_cost, rel=0.01)
    async with recorded.db.session() as s:
        settled, largest, still_open = (await s.execute(
            select(func.sum(BudgetCharge.cost_usd), func.max(BudgetCharge.reserved_usd),
                   func.count().filter(BudgetCharge.cost_usd.is_(None)))
            .where(BudgetCharge.user_id == user.user_id))).one()
    print(f"recorded budget: limit ${limit}, settled ${settled:.6f}, largest reservation ${largest:.6f}, "
          f"{len(completed)} completed, {len(stopped)} stopped, task ${task_cost:.6f}")
    assert settled <= limit + largest
    assert still_open == 0
    b = (await recorded.http.get("/v1/automation/budget", headers=user.headers)).json()
    assert b["spent_usd"] == pytest.approx(settled) and b["reserved_usd"] == 0

    one = ended[stopped[0]]
    r = await answer(recorded, user, one, decision="approve", answer={"add_usd": 1})
    assert r.status_code in (200, 202), r.text
    done = await wait_status(recorded.http, one["task_id"], user.headers, {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed", done
    assert done["usage"]["cost_usd"] == pytest.approx(task_cost, rel=0.01)
    b = (await recorded.http.get("/v1/automation/budget", headers=user.headers)).json()
    assert b["limit_usd"] == pytest.approx(limit + 1)
