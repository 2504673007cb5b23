"""``budget.threshold_reached`` through the real API, worker and a loopback receiver (CONTRACT §13):
published after a settled turn and after a limit change, once per threshold and limit."""

from __future__ import annotations

import asyncio
import json

import pytest
import pytest_asyncio
from sqlalchemy import func, select

from codetether.core.ids import utcnow
from codetether.core.models import BudgetCharge
from tests.api.test_budgets import ALL_SCOPES as BUDGET_SCOPES, create
from tests.conftest import make_settings, running_stack, wait_status
from tests.support.receiver import Receiver
from tests.webhooks.helpers import assert_signed
from tests.webhooks.test_delivery import subscribe

EVENT = "budget.threshold_reached"
ALL_SCOPES = [*BUDGET_SCOPES, "webhooks:manage"]
# The priced demo model of tests/api/test_budgets.py with a small output limit, so a turn reserves
# little more than it costs and two turns can cross a threshold.
MODELS = """
providers:
  offline: {kind: demo}
models:
  demo-priced: {provider: offline, max_output_tokens: 200, pricing: {input_per_mtok_usd: 100, output_per_mtok_usd: 100}}
"""


@pytest_asyncio.fixture
async def priced(temporal_address, database_url, tmp_path, temporal_env, db):
    models = tmp_path / "models.yaml"
    models.write_text(MODELS)
    settings = make_settings(temporal_address, database_url, tmp_path, models_file=models,
                             webhook_retry_schedule="0.2,0.2,0.2")
    async with running_stack(settings, temporal_env.client, db) as s:
        yield s


def thresholds(receiver: Receiver) -> list[tuple[int, float]]:
    out = []
    for req in receiver.requests:
        body = json.loads(req.body)
        assert body["event"] == EVENT and req.headers["webhook-id"] == body["id"]
        out.append((body["data"]["threshold_pct"], body["data"]["limit_usd"]))
    return out


async def test_thresholds_reach_the_account_subscriptions_once(priced, make_user):
    user = await make_user(scopes=ALL_SCOPES)
    other = await make_user(scopes=ALL_SCOPES)
    async with Receiver() as receiver, Receiver() as everything, Receiver() as others:
        sub = await subscribe(priced.http, user.headers, receiver.url, [EVENT])
        await subscribe(priced.http, user.headers, everything.url, ["task.completed"])
        await subscribe(priced.http, other.headers, others.url, ["*"])

        # A first task without a limit tells what a turn of this model costs and reserves.
        r = await create(priced, user)
        first_task = r.json()["task_id"]
        await wait_status(priced.http, first_task, user.headers, {"completed"})
        async with priced.db.session() as s:
            spent, largest = (await s.execute(select(func.sum(BudgetCharge.cost_usd), func.max(BudgetCharge.reserved_usd))
                                              .where(BudgetCharge.user_id == user.user_id))).one()
        # Earlier spend this month (X), then a limit with room for one more reservation, chosen so
        # that spend is below 50 % before the next task (c + X < L/2) and above it after
        # (2c + X >= L/2): the threshold is crossed by that task's settled turn.
        earlier = largest * 1.05 - 2 * spent
        async with priced.db.write_session() as s:
            s.add(BudgetCharge(id="chg_earlier_" + user.user_id[-8:], user_id=user.user_id, task_id=first_task, model="demo-priced",
                               reserved_usd=earlier, cost_usd=earlier, settled_at=utcnow(), created_at=utcnow()))
            await s.commit()
        limit = round(spent + earlier + largest * 1.05, 6)
        r = await priced.http.put("/v1/automation/budget", json={"limit_usd": limit}, headers=user.headers)
        assert r.status_code == 200 and r.json()["spent_usd"] < limit / 2
        await asyncio.sleep(1)
        assert receiver.requests == []
        r = await create(priced, user)
        assert r.status_code == 201, r.text
        await wait_status(priced.http, r.json()["task_id"], user.headers, {"completed"})
        first = await receiver.wait_for(1)
        assert_signed(first[0], sub["secret"])
        body = json.loads(first[0].body)
        data = body["data"]
        assert data["threshold_pct"] == 50 and data["limit_usd"] == limit and data["period"] == "month"
        assert data["spent_usd"] >= limit / 2 and data["period_start"].endswith("Z")

        # Lowering the limit to what is spent reaches every threshold of the new limit at once.
        b = (await priced.http.get("/v1/automation/budget", headers=user.headers)).json()
        r = await priced.http.put("/v1/automation/budget", json={"limit_usd": b["spent_usd"]}, headers=user.headers)
        assert r.status_code == 200
        await receiver.wait_for(4)
        # The same limit again publishes nothing new.
        await priced.http.put("/v1/automation/budget", json={"limit_usd": b["spent_usd"]}, headers=user.headers)
        await asyncio.sleep(1.5)
        got = thresholds(receiver)
        assert sorted(got) == sorted([(50, limit), (50, b["spent_usd"]), (80, b["spent_usd"]), (100, b["spent_usd"])])
        assert len({json.loads(r.body)["id"] for r in receiver.requests}) == 4
        # Subscriptions that did not ask, and other accounts, hear nothing of it.
        assert all(json.loads(r.body)["event"] != EVENT for r in everything.requests)
        assert all(json.loads(r.body)["event"] != EVENT for r in others.requests)
        deliveries = (await priced.http.get(f"/v1/webhooks/{sub['id']}/deliveries", headers=user.headers)).json()["data"]
        assert {d["event_type"] for d in deliveries} == {EVENT} and len(deliveries) == 4


async def test_an_unknown_account_event_name_is_refused_and_known_ones_are_accepted(priced, make_user):
    user = await make_user(scopes=ALL_SCOPES)
    r = await priced.http.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["budget.spent"]},
                               headers=user.headers)
    assert r.status_code == 422
    r = await priced.http.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook",
                                                     "events": [EVENT, "sponsorship.exhausted", "end_user.created"]},
                               headers=user.headers)
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("limit,spent,expected", [(None, 5, []), (0, 5, []), (10, 4.99, []), (10, 5, [50]),
                                                  (10, 8, [50, 80]), (10, 12, [50, 80, 100])])
def test_reached(limit, spent, expected):
    from codetether.budgets.periods import reached

    assert reached(limit, spent) == expected
