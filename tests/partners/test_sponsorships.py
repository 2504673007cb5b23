"""Sponsorships and partner usage through the real API, Temporal and worker (CONTRACT §14).

A models file adds ``demo-priced`` (the offline demo model with a price, as in
tests/api/test_budgets.py), so sponsored end users' turns cost money that a sponsorship pays.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time

import pytest
import pytest_asyncio
from sqlalchemy import func, select

from codetether.core.models import BudgetCharge
from tests.conftest import make_settings, running_stack, wait_status
from tests.partners.conftest import client_credentials
from tests.support.receiver import Receiver

SPONSORSHIPS = "/v1/partner/sponsorships"
END_USERS = "/v1/partner/end_users"
TASKS = "/v1/automation/tasks"
# $20 per million tokens: a demo turn reserves about $0.026 (its request plus 1,000 output tokens)
# and settles at about $0.014, so a few turns fit in $0.10.
MODELS = """
providers:
  offline: {kind: demo}
models:
  demo-priced: {provider: offline, max_output_tokens: 1000, pricing: {input_per_mtok_usd: 20, output_per_mtok_usd: 20}}
  demo-small: {provider: offline, max_output_tokens: 60, pricing: {input_per_mtok_usd: 1, output_per_mtok_usd: 100}}
"""
# demo-small's price is in its (short) output, so a turn reserves little more than it costs (about
# $0.007 for $0.0047) and the spend gets past 80 % of a small limit before a turn is refused.


def problem(r, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["code"] == code, r.json()


@pytest_asyncio.fixture
async def priced(temporal_address, database_url, tmp_path, temporal_env, db):
    models = tmp_path / "models.yaml"
    models.write_text(MODELS)
    settings = make_settings(temporal_address, database_url, tmp_path, models_file=models)
    async with running_stack(settings, temporal_env.client, db) as s:
        yield s


async def partner_with_token(http, make_partner):
    p = await make_partner()
    p.token = await client_credentials(http, p)
    return p


async def end_user(http, p, external_id: str, workspace: str | None = None) -> dict:
    body = {"external_id": external_id, **({"workspace_external_id": workspace} if workspace else {})}
    r = await http.post(END_USERS, json=body, headers=p.headers)
    assert r.status_code in (200, 201), r.text
    return r.json()


async def test_sponsorship_crud_validation_and_isolation(api, make_partner):
    acme, other = await partner_with_token(api, make_partner), await partner_with_token(api, make_partner)
    ada = await end_user(api, acme, "ada", "team-1")
    theirs = await end_user(api, other, "zed", "team-1")

    r = await api.post(SPONSORSHIPS, json={"scope": "workspace", "target_id": ada["workspace_id"], "limit_usd": 0.1,
                                           "period": "month"}, headers=acme.headers)
    assert r.status_code == 201, r.text
    ws = r.json()
    assert ws["sponsorship_id"].startswith("spn_") and r.headers["location"].endswith(ws["sponsorship_id"])
    assert (ws["scope"], ws["target_id"], ws["limit_usd"], ws["period"], ws["on_exhaust"]) == (
        "workspace", ada["workspace_id"], 0.1, "month", "ask")
    assert ws["spent_usd"] == 0 and ws["reserved_usd"] == 0 and ws["remaining_usd"] == 0.1
    assert ws["period_start"].endswith("Z") and ws["period_start"] < ws["period_end"]

    whole = (await api.post(SPONSORSHIPS, json={"scope": "partner", "limit_usd": 5, "period": "none"},
                            headers=acme.headers)).json()
    assert whole["target_id"] == acme.partner_id and whole["period"] == "none" and whole["period_end"] is None
    one = (await api.post(SPONSORSHIPS, json={"scope": "end_user", "target_id": ada["end_user_id"], "limit_usd": 1,
                                              "on_exhaust": "fail"}, headers=acme.headers)).json()
    assert one["period"] == "month" and one["on_exhaust"] == "fail"

    # Listed narrowest first; filtered by scope.
    listed = (await api.get(SPONSORSHIPS, headers=acme.headers)).json()["data"]
    assert [s["scope"] for s in listed] == ["end_user", "workspace", "partner"]
    only = (await api.get(SPONSORSHIPS, params={"scope": "workspace"}, headers=acme.headers)).json()["data"]
    assert [s["sponsorship_id"] for s in only] == [ws["sponsorship_id"]]
    assert (await api.get(f"{SPONSORSHIPS}/{ws['sponsorship_id']}", headers=acme.headers)).json() == ws

    # One per target.
    problem(await api.post(SPONSORSHIPS, json={"scope": "workspace", "target_id": ada["workspace_id"], "limit_usd": 2},
                           headers=acme.headers), 409, "sponsorship_exists")
    # Targets must be the partner's own.
    problem(await api.post(SPONSORSHIPS, json={"scope": "workspace", "target_id": theirs["workspace_id"],
                                               "limit_usd": 1}, headers=acme.headers), 404, "workspace_not_found")
    problem(await api.post(SPONSORSHIPS, json={"scope": "end_user", "target_id": theirs["end_user_id"],
                                               "limit_usd": 1}, headers=acme.headers), 404, "end_user_not_found")
    problem(await api.post(SPONSORSHIPS, json={"scope": "end_user", "target_id": ada["workspace_id"],
                                               "limit_usd": 1}, headers=acme.headers), 404, "end_user_not_found")
    problem(await api.post(SPONSORSHIPS, json={"scope": "partner", "target_id": other.partner_id, "limit_usd": 1},
                           headers=acme.headers), 404, "partner_not_found")
    # Invalid bodies.
    for body in ({"scope": "workspace", "limit_usd": 1},
                 {"scope": "team", "target_id": ada["workspace_id"], "limit_usd": 1},
                 {"scope": "partner", "limit_usd": 0},
                 {"scope": "partner", "limit_usd": -3},
                 {"scope": "partner", "limit_usd": 1, "period": "week"},
                 {"scope": "partner", "limit_usd": 1, "colour": "red"}):
        r = await api.post(SPONSORSHIPS, json=body, headers=acme.headers)
        assert r.status_code == 422, (body, r.text)

    # PATCH changes only what is sent; null and bad values are refused.
    r = await api.patch(f"{SPONSORSHIPS}/{ws['sponsorship_id']}", json={"limit_usd": 0.25}, headers=acme.headers)
    assert r.status_code == 200, r.text
    assert (r.json()["limit_usd"], r.json()["period"], r.json()["remaining_usd"]) == (0.25, "month", 0.25)
    r = await api.patch(f"{SPONSORSHIPS}/{ws['sponsorship_id']}", json={"period": "none"}, headers=acme.headers)
    assert r.json()["period"] == "none" and r.json()["limit_usd"] == 0.25 and r.json()["period_end"] is None
    for body in ({"limit_usd": None}, {"limit_usd": 0}, {"period": "year"}, {"scope": "partner"}):
        r = await api.patch(f"{SPONSORSHIPS}/{ws['sponsorship_id']}", json=body, headers=acme.headers)
        assert r.status_code == 422, (body, r.text)

    # Another partner sees none of it.
    assert (await api.get(SPONSORSHIPS, headers=other.headers)).json()["data"] == []
    for call in (api.get(f"{SPONSORSHIPS}/{ws['sponsorship_id']}", headers=other.headers),
                 api.patch(f"{SPONSORSHIPS}/{ws['sponsorship_id']}", json={"limit_usd": 9}, headers=other.headers),
                 api.delete(f"{SPONSORSHIPS}/{ws['sponsorship_id']}", headers=other.headers)):
        problem(await call, 404, "sponsorship_not_found")
    assert (await api.get(f"{SPONSORSHIPS}/{ws['sponsorship_id']}", headers=acme.headers)).json()["limit_usd"] == 0.25

    # An end user's own token (acting for it) is not the partner: no partner:manage.
    r = await api.get(SPONSORSHIPS, headers=acme.acting(ada["end_user_id"]))
    assert r.status_code == 403, r.text

    assert (await api.delete(f"{SPONSORSHIPS}/{ws['sponsorship_id']}", headers=acme.headers)).status_code == 204
    problem(await api.get(f"{SPONSORSHIPS}/{ws['sponsorship_id']}", headers=acme.headers), 404, "sponsorship_not_found")
    problem(await api.delete(f"{SPONSORSHIPS}/{ws['sponsorship_id']}", headers=acme.headers), 404,
            "sponsorship_not_found")
    r = await api.get("/v1/partner/usage", params={"group_by": "model"}, headers=acme.headers)
    assert r.status_code == 422

    # Deleting an end user ends its own sponsorship, not the wider ones.
    assert (await api.delete(f"{END_USERS}/{ada['end_user_id']}", headers=acme.headers)).status_code == 204
    problem(await api.get(f"{SPONSORSHIPS}/{one['sponsorship_id']}", headers=acme.headers), 404, "sponsorship_not_found")
    assert [s["sponsorship_id"] for s in (await api.get(SPONSORSHIPS, headers=acme.headers)).json()["data"]] == [
        whole["sponsorship_id"]]


async def create_task(stack, p, eu: dict, **body):
    body = {"title": "Sponsored", "description": "Summarize", "model": "demo-priced", **body}
    return await stack.http.post(TASKS, json=body, headers=p.acting(eu["end_user_id"]))


async def run_task(stack, p, eu: dict, **body) -> dict:
    r = await create_task(stack, p, eu, **body)
    assert r.status_code == 201, r.text
    return await wait_status(stack.http, r.json()["task_id"], p.acting(eu["end_user_id"]),
                             {"needs_input", "completed", "failed"}, timeout=60)


async def answer(stack, p, eu: dict, task: dict, **body):
    return await stack.http.post(f"{TASKS}/{task['task_id']}/input",
                                 json={"required_action_id": task["required_action"]["id"], **body},
                                 headers=p.acting(eu["end_user_id"]))


def usage(task: dict, field: str) -> float:
    # A task parked before its first turn has no usage yet.
    return (task["usage"] or {}).get(field) or 0


async def get_spn(stack, p, spn_id: str) -> dict:
    r = await stack.http.get(f"{SPONSORSHIPS}/{spn_id}", headers=p.headers)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.postgres
async def test_a_spent_workspace_sponsorship_parks_both_end_users_and_usage_adds_up(priced, make_partner):
    acme = await partner_with_token(priced.http, make_partner)
    ada, bob = await end_user(priced.http, acme, "ada", "team-s"), await end_user(priced.http, acme, "bob", "team-s")
    assert ada["workspace_id"] == bob["workspace_id"]
    spn = (await priced.http.post(SPONSORSHIPS, json={"scope": "workspace", "target_id": ada["workspace_id"],
                                                      "limit_usd": 0.10, "period": "month"}, headers=acme.headers)).json()

    # Tasks of the two end users, one after the other, until each has one parked on the budget.
    tasks: dict[str, list[dict]] = {"ada": [], "bob": []}
    parked: dict[str, dict] = {}
    for i in range(20):
        who, eu = ("ada", ada) if i % 2 == 0 else ("bob", bob)
        if who in parked:
            continue
        done = await run_task(priced, acme, eu, title=f"Task {i}")
        tasks[who].append(done)
        if done["status"] == "needs_input":
            parked[who] = done
        else:
            assert done["status"] == "completed", done
        if len(parked) == 2:
            break
    assert set(parked) == {"ada", "bob"}, {k: [t["status"] for t in v] for k, v in tasks.items()}
    for task in parked.values():
        action = task["required_action"]
        assert action["kind"] == "budget" and "sponsored budget" in action["prompt"], action
    assert all(len(v) >= 2 for v in tasks.values()), "both end users spent before the budget ran out"

    # Spend never passes the limit; what is left cannot pay a turn.
    async with priced.db.session() as s:
        settled, largest = (await s.execute(select(func.sum(BudgetCharge.cost_usd), func.max(BudgetCharge.reserved_usd))
                                            .where(BudgetCharge.sponsorship_id == spn["sponsorship_id"]))).one()
    now = await get_spn(priced, acme, spn["sponsorship_id"])
    assert now["spent_usd"] == pytest.approx(settled) and now["reserved_usd"] == 0
    assert 0 < now["spent_usd"] <= 0.10 and now["remaining_usd"] < largest
    costs = {who: sum(usage(t, "cost_usd") for t in ts) for who, ts in tasks.items()}
    assert sum(costs.values()) == pytest.approx(now["spent_usd"])
    # The partner paid: the end users' own budgets are untouched.
    own = (await priced.http.get("/v1/automation/budget", headers=acme.acting(ada["end_user_id"]))).json()
    assert own["spent_usd"] == 0

    # The usage CSV adds up to the settled costs, per end user and in total.
    r = await priced.http.get("/v1/partner/usage", params={"group_by": "end_user", "format": "csv"}, headers=acme.headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = {row["key"]: row for row in csv.DictReader(io.StringIO(r.text))}
    assert set(rows) == {ada["end_user_id"], bob["end_user_id"]}
    assert float(rows[ada["end_user_id"]]["cost_usd"]) == pytest.approx(costs["ada"])
    assert float(rows[bob["end_user_id"]]["cost_usd"]) == pytest.approx(costs["bob"])
    assert int(rows[ada["end_user_id"]]["tasks"]) == len(tasks["ada"]) - 1  # the parked task was never charged
    by_ws = (await priced.http.get("/v1/partner/usage", params={"group_by": "workspace"}, headers=acme.headers)).json()
    assert [(row["key"], row["tasks"]) for row in by_ws["data"]] == [(ada["workspace_id"], len(tasks["ada"]) + len(tasks["bob"]) - 2)]
    assert by_ws["data"][0]["cost_usd"] == pytest.approx(now["spent_usd"])
    by_day = (await priced.http.get("/v1/partner/usage", params={"group_by": "day"}, headers=acme.headers)).json()["data"]
    assert sum(row["cost_usd"] for row in by_day) == pytest.approx(now["spent_usd"])
    assert sum(row["input_tokens"] for row in by_day) == sum(usage(t, "input_tokens") for ts in tasks.values() for t in ts)

    # Nothing left at all: a new task is refused before it starts (402, CONTRACT §13).
    await priced.http.patch(f"{SPONSORSHIPS}/{spn['sponsorship_id']}", json={"limit_usd": now["spent_usd"]},
                            headers=acme.headers)
    problem(await create_task(priced, acme, bob), 402, "budget_exhausted")

    # An end user's approval cannot raise the partner's sponsorship: the task asks again.
    r = await answer(priced, acme, ada, parked["ada"], decision="approve", answer={"add_usd": 10})
    assert r.status_code in (200, 202), r.text
    again = await wait_status(priced.http, parked["ada"]["task_id"], acme.acting(ada["end_user_id"]), {"needs_input"},
                              timeout=30)
    deadline = time.monotonic() + 30
    while again["required_action"]["id"] == parked["ada"]["required_action"]["id"] and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        again = (await priced.http.get(f"{TASKS}/{parked['ada']['task_id']}", headers=acme.acting(ada["end_user_id"]))).json()
    assert again["status"] == "needs_input" and again["required_action"]["kind"] == "budget", again
    assert again["required_action"]["id"] != parked["ada"]["required_action"]["id"]
    assert (await get_spn(priced, acme, spn["sponsorship_id"]))["limit_usd"] == pytest.approx(now["spent_usd"])

    # The partner raises it; the parked tasks continue to completion when approved.
    r = await priced.http.patch(f"{SPONSORSHIPS}/{spn['sponsorship_id']}", json={"limit_usd": 1}, headers=acme.headers)
    assert r.status_code == 200 and r.json()["remaining_usd"] > 0.8
    for who, eu, task in (("ada", ada, again), ("bob", bob, parked["bob"])):
        assert (await answer(priced, acme, eu, task, decision="approve")).status_code in (200, 202)
        done = await wait_status(priced.http, task["task_id"], acme.acting(eu["end_user_id"]), {"completed", "failed"},
                                 timeout=60)
        assert done["status"] == "completed", (who, done)
    final = await get_spn(priced, acme, spn["sponsorship_id"])
    assert final["spent_usd"] > now["spent_usd"] and final["reserved_usd"] == 0


async def test_the_narrowest_sponsorship_with_room_pays_and_on_exhaust_fail_ends_the_task(priced, make_partner):
    acme = await partner_with_token(priced.http, make_partner)
    ada, cy = await end_user(priced.http, acme, "ada", "team-n"), await end_user(priced.http, acme, "cy", "solo")

    async def sponsor(**body) -> dict:
        r = await priced.http.post(SPONSORSHIPS, json=body, headers=acme.headers)
        assert r.status_code == 201, r.text
        return r.json()

    # Ada's own sponsorship cannot pay a turn: her workspace's pays.
    tiny = await sponsor(scope="end_user", target_id=ada["end_user_id"], limit_usd=0.001)
    team = await sponsor(scope="workspace", target_id=ada["workspace_id"], limit_usd=1)
    done = await run_task(priced, acme, ada)
    assert done["status"] == "completed", done
    assert (await get_spn(priced, acme, tiny["sponsorship_id"]))["spent_usd"] == 0
    assert (await get_spn(priced, acme, team["sponsorship_id"]))["spent_usd"] == pytest.approx(done["usage"]["cost_usd"])

    # With room, the narrowest pays first.
    await priced.http.patch(f"{SPONSORSHIPS}/{tiny['sponsorship_id']}", json={"limit_usd": 1}, headers=acme.headers)
    done = await run_task(priced, acme, ada)
    assert (await get_spn(priced, acme, tiny["sponsorship_id"]))["spent_usd"] == pytest.approx(done["usage"]["cost_usd"])

    # Cy has no sponsorship: his own budget pays (CONTRACT §13), as for any user.
    done = await run_task(priced, acme, cy)
    assert done["status"] == "completed", done
    own = (await priced.http.get("/v1/automation/budget", headers=acme.acting(cy["end_user_id"]))).json()
    assert own["spent_usd"] == pytest.approx(done["usage"]["cost_usd"])
    async with priced.db.session() as s:
        paid_by = (await s.execute(select(BudgetCharge.sponsorship_id, BudgetCharge.end_user_id)
                                   .where(BudgetCharge.task_id == done["task_id"]))).all()
    assert paid_by and all(row == (None, cy["end_user_id"]) for row in paid_by)

    # A partner-wide sponsorship that stops with on_exhaust fail: Cy's task fails at once.
    await sponsor(scope="partner", limit_usd=0.001, on_exhaust="fail")
    done = await run_task(priced, acme, cy)
    assert done["status"] == "failed" and done["error"]["code"] == "budget_exceeded", done
    assert "sponsored budget" in done["error"]["message"]
    usage = (await priced.http.get("/v1/partner/usage", params={"group_by": "end_user"}, headers=acme.headers)).json()
    assert {row["key"] for row in usage["data"]} == {ada["end_user_id"], cy["end_user_id"]}


def events(receiver: Receiver) -> list[tuple[str, int | None, dict]]:
    out = []
    for req in receiver.requests:
        body = json.loads(req.body)
        assert req.headers["webhook-id"] == body["id"]
        out.append((body["event"], body["data"].get("threshold_pct"), body["data"]))
    return out


LIMIT = 0.04


async def test_threshold_and_exhausted_events_reach_the_partners_subscription(priced, make_partner):
    from tests.webhooks.helpers import assert_signed
    from tests.webhooks.test_delivery import subscribe

    http = priced.http
    acme = await partner_with_token(http, make_partner)
    ed = await end_user(http, acme, "ed")
    async with Receiver() as receiver:
        # The partner subscribes with its own client credentials token (its service account's).
        sub = await subscribe(http, acme.headers, receiver.url, ["sponsorship.threshold_reached", "sponsorship.exhausted"])
        r = await http.post(SPONSORSHIPS, json={"scope": "end_user", "target_id": ed["end_user_id"], "limit_usd": LIMIT},
                            headers=acme.headers)
        assert r.status_code == 201, r.text
        spn = r.json()
        for i in range(25):
            done = await run_task(priced, acme, ed, title=f"Task {i}", model="demo-small")
            if done["status"] == "needs_input":
                break
        assert done["status"] == "needs_input" and done["required_action"]["kind"] == "budget", done
        spent = (await get_spn(priced, acme, spn["sponsorship_id"]))["spent_usd"]
        expected = {("sponsorship.threshold_reached", pct) for pct in (50, 80, 100) if spent >= LIMIT * pct / 100}
        expected.add(("sponsorship.exhausted", None))
        assert {("sponsorship.threshold_reached", 50), ("sponsorship.threshold_reached", 80)} <= expected, spent
        await receiver.wait_for(len(expected))
        await asyncio.sleep(1)  # later turns settled past 50 % too: none of them sends it again
        got = events(receiver)
        order = lambda x: (x[0], x[1] or 0)
        assert sorted(((e, p) for e, p, _ in got), key=order) == sorted(expected, key=order)
        assert_signed(receiver.requests[0], sub["secret"])
        for event, pct, data in got:
            assert data["sponsorship_id"] == spn["sponsorship_id"] and data["scope"] == "end_user"
            assert data["target_id"] == ed["end_user_id"] and data["limit_usd"] == LIMIT
            assert data["period"] == "month" and data["period_start"].endswith("Z")
            if event == "sponsorship.threshold_reached":
                assert data["spent_usd"] >= LIMIT * pct / 100
        exhausted = next(d for e, _, d in got if e == "sponsorship.exhausted")
        assert exhausted["remaining_usd"] < LIMIT / 2

        # The partner lowers the limit to what is spent: every threshold of that limit at once.
        before = len(receiver.requests)
        r = await http.patch(f"{SPONSORSHIPS}/{spn['sponsorship_id']}", json={"limit_usd": spent}, headers=acme.headers)
        assert r.status_code == 200, r.text
        await receiver.wait_for(before + 3)
        later = [(e, p, d["limit_usd"]) for e, p, d in events(receiver)[before:]]
        assert sorted(later) == [("sponsorship.threshold_reached", pct, spent) for pct in (50, 80, 100)]


@pytest.mark.postgres
async def test_concurrent_tasks_of_a_workspace_never_overspend_its_sponsorship(priced, make_partner):
    acme = await partner_with_token(priced.http, make_partner)
    ada, bob = await end_user(priced.http, acme, "ada", "team-c"), await end_user(priced.http, acme, "bob", "team-c")
    spn = (await priced.http.post(SPONSORSHIPS, json={"scope": "workspace", "target_id": ada["workspace_id"],
                                                      "limit_usd": 0.10}, headers=acme.headers)).json()
    people = [ada, bob] * 5
    created = await asyncio.gather(*(create_task(priced, acme, eu, title=f"Batch {i}") for i, eu in enumerate(people)))
    assert all(r.status_code == 201 for r in created), [r.text for r in created]
    ended = [await wait_status(priced.http, r.json()["task_id"], acme.acting(eu["end_user_id"]),
                               {"needs_input", "completed", "failed"}, timeout=120) for r, eu in zip(created, people)]
    assert not [t for t in ended if t["status"] == "failed"], ended
    stopped = [t for t in ended if t["status"] == "needs_input"]
    assert stopped and all(t["required_action"]["kind"] == "budget" for t in stopped)
    async with priced.db.session() as s:
        settled, largest = (await s.execute(select(func.sum(BudgetCharge.cost_usd), func.max(BudgetCharge.reserved_usd))
                                            .where(BudgetCharge.sponsorship_id == spn["sponsorship_id"]))).one()
    # Open reservations count: turns refused while others were under way stop short of the
    # limit, and none passes it.
    assert 0 < settled <= 0.10 and largest > 0
    assert (await get_spn(priced, acme, spn["sponsorship_id"]))["spent_usd"] == pytest.approx(settled)


async def test_a_retried_sponsored_turn_keeps_its_one_charge(db, settings, make_partner, api):
    from codetether.budgets import ledger

    acme = await partner_with_token(api, make_partner)
    eu = await end_user(api, acme, "rita")
    spn = (await api.post(SPONSORSHIPS, json={"scope": "end_user", "target_id": eu["end_user_id"], "limit_usd": 1},
                          headers=acme.headers)).json()
    async with db.session() as s:
        from codetether.core.models import PartnerEndUser
        user_id = (await s.execute(select(PartnerEndUser.user_id).where(PartnerEndUser.id == eu["end_user_id"]))).scalar_one()
    key = "task_r:run_r:1"
    first = await ledger.reserve(db, settings, "task_r", user_id, "demo-priced", 0.5, turn_key=key)
    await ledger.settle(db, first, 0.0)  # the attempt died before any tokens were counted
    again = await ledger.reserve(db, settings, "task_r", user_id, "demo-priced", 0.4, turn_key=key)
    assert again == first
    mid = (await api.get(f"{SPONSORSHIPS}/{spn['sponsorship_id']}", headers=acme.headers)).json()
    assert (mid["spent_usd"], mid["reserved_usd"]) == (0, 0.4)
    await ledger.settle(db, again, 0.25, 100, 20)
    await ledger.settle(db, again, 9.0)  # a late duplicate settlement changes nothing
    after = (await api.get(f"{SPONSORSHIPS}/{spn['sponsorship_id']}", headers=acme.headers)).json()
    assert (after["spent_usd"], after["reserved_usd"], after["remaining_usd"]) == (0.25, 0, 0.75)
    async with db.session() as s:
        rows = (await s.execute(select(BudgetCharge).where(BudgetCharge.task_id == "task_r"))).scalars().all()
    assert [(r.cost_usd, r.sponsorship_id, r.end_user_id, r.workspace_id, r.partner_id) for r in rows] == [
        (0.25, spn["sponsorship_id"], eu["end_user_id"], eu["workspace_id"], acme.partner_id)]
    # A reservation the sponsorship cannot hold is refused, naming it.
    with pytest.raises(ledger.BudgetRefused) as refused:
        await ledger.reserve(db, settings, "task_r", user_id, "demo-priced", 0.8, turn_key="task_r:run_r:2")
    assert refused.value.bound == "sponsorship" and refused.value.sponsorship_ids == [spn["sponsorship_id"]]
