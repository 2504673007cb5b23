"""Running-task limits per tier: a free user's seventh task waits, higher priority starts first.

Seven slow demo tasks of a free user (limit 5): at most five are ever running, the others are
queued, and all complete. "At most five at any time" is checked on the task objects themselves:
no instant lies inside more than five [started_at, completed_at] intervals.
"""

from __future__ import annotations

import asyncio

from codetether.core.ids import parse_iso
from tests.conftest import wait_status
from codetether.concurrency.workflow import ConcurrencyWorkflow, concurrency_workflow_id

TASKS = "/v1/automation/tasks"


async def _create(http, user, title: str, prompt: str, priority: int = 0) -> dict:
    r = await http.post(TASKS, json={"title": title, "prompt": prompt, "priority": priority}, headers=user.headers)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "queued"
    return r.json()


async def _list(http, user) -> dict[str, dict]:
    r = await http.get(TASKS, params={"limit": 100}, headers=user.headers)
    assert r.status_code == 200, r.text
    return {t["task_id"]: t for t in r.json()["data"]}


async def _until(predicate, http, user, timeout: float = 60.0, every: float = 0.4) -> dict[str, dict]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        tasks = await _list(http, user)
        running = sum(t["status"] == "running" for t in tasks.values())
        assert running <= 5, {k: v["status"] for k, v in tasks.items()}
        if predicate(tasks):
            return tasks
        assert loop.time() < deadline, {k: v["status"] for k, v in tasks.items()}
        await asyncio.sleep(every)


def _max_overlap(tasks: list[dict]) -> int:
    points = []
    for t in tasks:
        points.append((parse_iso(t["started_at"]), 1))
        points.append((parse_iso(t["completed_at"]), -1))
    # At equal times an end comes before a start.
    points.sort(key=lambda p: (p[0], p[1]))
    current = peak = 0
    for _, delta in points:
        current += delta
        peak = max(peak, current)
    return peak


async def test_seven_slow_tasks_of_a_free_user(stack, make_user):
    free = await make_user("free")
    me = (await stack.http.get("/v1/automation/me", headers=free.headers)).json()
    assert me["concurrent_tasks_limit"] == 5

    # Five fill the slots; one of them ends early so exactly one slot frees first.
    first = [await _create(stack.http, free, "short", "SLEEP: 1")]
    first += [await _create(stack.http, free, f"long {i}", "SLEEP: 4") for i in range(4)]
    ids = [t["task_id"] for t in first]
    await _until(lambda ts: sum(ts[i]["status"] == "running" for i in ids) == 5, stack.http, free)

    low = await _create(stack.http, free, "low priority", "SLEEP: 1", priority=-5)
    high = await _create(stack.http, free, "high priority", "SLEEP: 1", priority=10)
    # Both wait in the owner's slot queue, the urgent one first.
    handle = stack.client.get_workflow_handle_for(ConcurrencyWorkflow.run, concurrency_workflow_id(free.user_id))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        slots = await handle.query(ConcurrencyWorkflow.get_slots)
        if len(slots.waiting) == 2 or loop.time() > deadline:
            break
        await asyncio.sleep(0.1)
    assert slots.limit == 5 and len(slots.holders) == 5
    assert slots.waiting == [high["task_id"], low["task_id"]]
    tasks = await _list(stack.http, free)
    assert tasks[low["task_id"]]["status"] == "queued" and tasks[high["task_id"]]["status"] == "queued"

    # The first freed slot goes to the high-priority task while the low one keeps waiting.
    tasks = await _until(
        lambda ts: ts[high["task_id"]]["status"] in ("running", "completed"), stack.http, free, every=0.3
    )
    assert tasks[low["task_id"]]["status"] == "queued"

    all_ids = ids + [low["task_id"], high["task_id"]]
    done = [await wait_status(stack.http, i, free.headers, {"completed", "failed", "cancelled"}, timeout=90) for i in all_ids]
    assert [t["status"] for t in done] == ["completed"] * 7
    assert _max_overlap(done) <= 5
    by_id = {t["task_id"]: t for t in done}
    assert parse_iso(by_id[high["task_id"]]["started_at"]) <= parse_iso(by_id[low["task_id"]]["started_at"])
    # Waiting for a slot is visible: the queued ones started only after the first ones did.
    assert parse_iso(by_id[high["task_id"]]["started_at"]) >= parse_iso(by_id[ids[0]]["completed_at"])


async def test_pro_runs_more_and_enterprise_is_unlimited(stack, make_user):
    pro = await make_user("pro")
    ent = await make_user("enterprise")
    assert (await stack.http.get("/v1/automation/me", headers=pro.headers)).json()["concurrent_tasks_limit"] == 25
    created = [await _create(stack.http, ent, f"e{i}", "SLEEP: 4") for i in range(7)]
    done = [await wait_status(stack.http, t["task_id"], ent.headers, {"completed", "failed"}, timeout=60) for t in created]
    assert [t["status"] for t in done] == ["completed"] * 7
    # Nothing queued behind a limit: all seven ran side by side.
    assert _max_overlap(done) == 7


async def test_a_tier_upgrade_opens_slots_for_the_queue(stack, make_user):
    """Five slow tasks fill a free user's slots; after an upgrade to pro a sixth starts at once."""
    from sqlalchemy import update

    from codetether.core.models import User

    user = await make_user("free")
    first = [await _create(stack.http, user, f"slow {i}", "SLEEP: 8") for i in range(5)]
    ids = [t["task_id"] for t in first]
    await _until(lambda ts: sum(ts[i]["status"] == "running" for i in ids) == 5, stack.http, user)
    async with stack.db.session() as s:
        await s.execute(update(User).where(User.id == user.user_id).values(tier="pro"))
        await s.commit()
    me = (await stack.http.get("/v1/automation/me", headers=user.headers)).json()
    assert me["tier"] == "pro" and me["concurrent_tasks_limit"] == 25
    sixth = await _create(stack.http, user, "after upgrade", "quick")
    done = await wait_status(stack.http, sixth["task_id"], user.headers, {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed"
    # It did not wait for a slot: it finished while the first five were still running.
    tasks = await _list(stack.http, user)
    assert [tasks[i]["status"] for i in ids].count("running") == 5
    handle = stack.client.get_workflow_handle_for(ConcurrencyWorkflow.run, concurrency_workflow_id(user.user_id))
    assert (await handle.query(ConcurrencyWorkflow.get_slots)).limit == 25
