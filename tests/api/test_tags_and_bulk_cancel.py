"""Tags on tasks and bulk cancellation (CONTRACT §11), through the real API and Temporal.

Tasks that ask a question (the demo model's ``ASK:`` line) wait in ``needs_input`` until
cancelled, so a bulk cancel has live workflows to stop.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from codetether.core.ids import new_id, utcnow
from codetether.core.models import Task
from tests.conftest import wait_status

TASKS = "/v1/automation/tasks"


async def create(stack, user, *, tags=None, ask=False, title="A task") -> dict:
    body = {"title": title, "description": "Paint it\nASK: Which color?" if ask else "Do it."}
    if tags is not None:
        body["tags"] = tags
    r = await stack.http.post(TASKS, json=body, headers=user.headers)
    assert r.status_code == 201, r.text
    return r.json()


def problem(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code, r.json()
    return r.json()


async def listed(stack, user, **params) -> list[str]:
    r = await stack.http.get(TASKS, params=params, headers=user.headers)
    assert r.status_code == 200, r.text
    return [t["task_id"] for t in r.json()["data"]]


@pytest.mark.postgres  # the tag test is JSON containment there, json_each on SQLite
async def test_tags_are_stored_returned_and_filter_the_list(stack, make_user):
    alice, bob = await make_user(), await make_user()
    a = await create(stack, alice, tags=["crm:lead", "batch.7", "crm:lead"])
    assert a["tags"] == ["crm:lead", "batch.7"]
    b = await create(stack, alice, tags=["crm:lead"])
    plain = await create(stack, alice)
    assert plain["tags"] == []
    await create(stack, bob, tags=["crm:lead", "batch.7"])

    got = await stack.http.get(f"{TASKS}/{a['task_id']}", headers=alice.headers)
    assert got.json()["tags"] == ["crm:lead", "batch.7"]
    assert set(await listed(stack, alice, tag="crm:lead")) == {a["task_id"], b["task_id"]}
    # Repeated: tasks having every given tag, and only the caller's.
    assert await listed(stack, alice, tag=["crm:lead", "batch.7"]) == [a["task_id"]]
    assert await listed(stack, alice, tag="nobody-has-this") == []
    done = await wait_status(stack.http, a["task_id"], alice.headers, {"completed", "failed"})
    assert done["tags"] == ["crm:lead", "batch.7"]


async def test_bad_tags_are_refused(stack, user):
    for tags in (["has space"], [""], ["x" * 65], [f"t{i}" for i in range(21)], "crm", [7]):
        r = await stack.http.post(TASKS, json={"title": "t", "description": "d", "tags": tags}, headers=user.headers)
        problem(r, 422, "validation_error")
    problem(await stack.http.get(TASKS, params={"tag": "bad tag"}, headers=user.headers), 422, "validation_error")
    r = await stack.http.get(TASKS, headers=user.headers)
    assert r.json()["data"] == []


async def test_bulk_cancel_by_tag_cancels_exactly_the_callers_matching_tasks(stack, make_user):
    alice, bob = await make_user(), await make_user()
    batch = [await create(stack, alice, tags=["batch:1"], ask=True, title=f"Batch {i}") for i in range(3)]
    finished = await create(stack, alice, tags=["batch:1"])
    other = await create(stack, alice, tags=["batch:2"], ask=True)
    bobs = await create(stack, bob, tags=["batch:1"], ask=True)
    for t, who in [*((t, alice) for t in batch), (other, alice), (bobs, bob)]:
        assert (await wait_status(stack.http, t["task_id"], who.headers, {"needs_input", "failed"}))["status"] == "needs_input"
    assert (await wait_status(stack.http, finished["task_id"], alice.headers, {"completed", "failed"}))["status"] == "completed"

    r = await stack.http.post(f"{TASKS}/cancel", json={"filter": {"tag": "batch:1"}}, headers=alice.headers)
    assert r.status_code == 200, r.text
    assert sorted(r.json()["cancelled"]) == sorted(t["task_id"] for t in batch)
    assert r.json()["skipped"] == []
    for t in batch:
        got = (await stack.http.get(f"{TASKS}/{t['task_id']}", headers=alice.headers)).json()
        assert got["status"] == "cancelled"
        events = (await stack.http.get(f"{TASKS}/{t['task_id']}/events", headers=alice.headers)).json()["data"]
        assert events[-1]["event"] == "task.cancelled"
    for t, who, status in ((other, alice, "needs_input"), (bobs, bob, "needs_input"), (finished, alice, "completed")):
        assert (await stack.http.get(f"{TASKS}/{t['task_id']}", headers=who.headers)).json()["status"] == status

    # By ids: someone else's task, an unknown id and a finished one are skipped; a repeat of an
    # already cancelled one is reported cancelled again.
    ids = [other["task_id"], bobs["task_id"], "task_doesnotexist", finished["task_id"], batch[0]["task_id"]]
    r = await stack.http.post(f"{TASKS}/cancel", json={"task_ids": ids}, headers=alice.headers)
    assert r.status_code == 200, r.text
    assert sorted(r.json()["cancelled"]) == sorted([other["task_id"], batch[0]["task_id"]])
    assert sorted(r.json()["skipped"]) == sorted([bobs["task_id"], "task_doesnotexist", finished["task_id"]])
    assert (await stack.http.get(f"{TASKS}/{bobs['task_id']}", headers=bob.headers)).json()["status"] == "needs_input"
    r = await stack.http.post(f"{TASKS}/cancel", json={"task_ids": [bobs["task_id"]]}, headers=bob.headers)
    assert r.json() == {"cancelled": [bobs["task_id"]], "skipped": []}


@pytest.mark.postgres
async def test_bulk_cancel_filter_by_status_list_and_every_tag(stack, user):
    both = await create(stack, user, tags=["a", "b"], ask=True)
    only_a = await create(stack, user, tags=["a"], ask=True)
    for t in (both, only_a):
        await wait_status(stack.http, t["task_id"], user.headers, {"needs_input"})
    r = await stack.http.post(f"{TASKS}/cancel", json={"filter": {"tag": ["a", "b"], "status": ["needs_input", "running"]}},
                              headers=user.headers)
    assert r.json() == {"cancelled": [both["task_id"]], "skipped": []}
    r = await stack.http.post(f"{TASKS}/cancel", json={"filter": {"status": "completed"}}, headers=user.headers)
    assert r.json() == {"cancelled": [], "skipped": []}
    assert (await stack.http.get(f"{TASKS}/{only_a['task_id']}", headers=user.headers)).json()["status"] == "needs_input"


async def test_bulk_cancel_refuses_bad_requests_and_too_many_matches(stack, user, db):
    for body in ({}, {"task_ids": ["x"], "filter": {}}, {"task_ids": []}, {"filter": {"status": "nope"}},
                 {"filter": {"tag": "bad tag"}}, {"filter": {"created_after": "yesterday"}}, {"filter": {"color": "red"}}):
        problem(await stack.http.post(f"{TASKS}/cancel", json=body, headers=user.headers), 422, "validation_error")
    # 1,001 queued tasks of the caller (rows only: nothing runs them).
    now = utcnow()
    async with db.session() as s:
        s.add_all(Task(id=new_id("task"), user_id=user.user_id, run_id=new_id("run"), title="t", description="d",
                       agent_type="general", model="demo", status="queued", created_at=now, updated_at=now,
                       tags=["flood"], metadata_={}, conversation=[]) for _ in range(1001))
        await s.commit()
    r = await stack.http.post(f"{TASKS}/cancel", json={"filter": {"tag": "flood"}}, headers=user.headers)
    problem(r, 422, "too_many_tasks")
    async with db.session() as s:
        assert (await s.execute(select(func.count()).select_from(Task).where(Task.status == "cancelled",
                                                                              Task.user_id == user.user_id))).scalar() == 0


async def test_a_cancel_right_after_create_is_not_lost(stack, user):
    # The cancel reaches each workflow while its first model turn runs; that turn finishes anyway
    # (it never heartbeats), and the task must still end cancelled rather than park on its question.
    tasks = [await create(stack, user, tags=["race"], ask=True, title=f"Race {i}") for i in range(2)]
    single = await create(stack, user, ask=True, title="Race single")
    r = await stack.http.post(f"{TASKS}/cancel", json={"filter": {"tag": "race"}}, headers=user.headers)
    assert sorted(r.json()["cancelled"]) == sorted(t["task_id"] for t in tasks)
    r = await stack.http.delete(f"{TASKS}/{single['task_id']}", headers=user.headers)
    assert r.status_code in (200, 202)
    for t in (*tasks, single):
        done = await wait_status(stack.http, t["task_id"], user.headers, {"cancelled", "completed", "failed"})
        assert done["status"] == "cancelled", done
        assert done["required_action"] is None
