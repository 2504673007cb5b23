"""Subscriptions end to end: real API, real Temporal, real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.conftest import wait_status
from tests.support.receiver import Receiver, Reply
from tests.webhooks.helpers import assert_signed, wait_deliveries, wait_webhook

ALL_SCOPES = ["tasks:read", "tasks:write", "messages:write", "webhooks:manage"]


async def subscribe(api, headers, url, events, **extra) -> dict:
    r = await api.post("/v1/webhooks", json={"url": url, "events": events, **extra}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


@pytest.mark.postgres
async def test_retries_500_503_then_200_with_signatures_and_log(stack, make_user):
    user = await make_user(scopes=ALL_SCOPES)
    async with Receiver() as rx:
        seen: Counter[str] = Counter()

        def respond(req):
            seen[req.headers["webhook-id"]] += 1
            return {1: 500, 2: Reply(503, {"Retry-After": "0"})}.get(seen[req.headers["webhook-id"]], 200)

        rx.respond = respond
        sub = await subscribe(stack.http, user.headers, rx.url, ["task.created", "task.completed"])
        assert sub["id"].startswith("whk_") and sub["secret"].startswith("whsec_")
        secret = sub["secret"]

        r = await stack.http.post(
            "/v1/automation/tasks", json={"title": "Hooked", "prompt": "say hi", "model": "demo"}, headers=user.headers
        )
        assert r.status_code == 201, r.text
        task_id = r.json()["task_id"]
        await wait_status(stack.http, task_id, user.headers, {"completed"})

        deliveries = await wait_deliveries(
            stack.http, sub["id"], user.headers,
            lambda d: len(d) == 2 and all(x["status"] == "delivered" for x in d),
        )
        reqs = await rx.wait_for(6)
        assert len(reqs) == 6
        by_event: dict[str, list] = {}
        for req in reqs:
            by_event.setdefault(req.headers["webhook-id"], []).append(req)
        assert len(by_event) == 2
        types = set()
        for event_id, attempts in by_event.items():
            assert len(attempts) == 3
            bodies = {a.body for a in attempts}
            assert len(bodies) == 1, "every retry carries the same body"
            payload = json.loads(attempts[0].body)
            assert payload["id"] == event_id and event_id.startswith("evt_")
            assert payload["task_id"] == task_id
            types.add(payload["event"])
            for a in attempts:
                assert_signed(a, secret)
                assert a.headers["x-codetether-event"] == payload["event"]
                assert a.headers["x-codetether-delivery"].startswith("dlv_")
        assert types == {"task.created", "task.completed"}

        for d in deliveries:
            assert [a["status_code"] for a in d["attempts"]] == [500, 503, 200]
            assert [a["attempt"] for a in d["attempts"]] == [1, 2, 3]
            assert all(a["event_id"] == d["event_id"] for a in d["attempts"])
            assert d["attempts"][0]["error"] == "HTTP 500"
            assert d["attempts"][0]["next_attempt_at"] is not None
            assert d["attempts"][2]["next_attempt_at"] is None and d["attempts"][2]["error"] is None
            assert all(a["duration_ms"] is not None for a in d["attempts"])
            assert d["attempt_count"] == 3 and d["last_status_code"] == 200


@pytest.mark.postgres
async def test_410_disables_then_delete_is_404(stack, make_user):
    user = await make_user(scopes=ALL_SCOPES)
    async with Receiver() as rx:
        rx.script([], default=410)
        sub = await subscribe(stack.http, user.headers, rx.url, ["*"])
        r = await stack.http.post(f"/v1/webhooks/{sub['id']}/test", headers=user.headers)
        assert r.status_code == 202, r.text
        assert r.json()["event_type"] == "ping"
        disabled = await wait_webhook(stack.http, sub["id"], user.headers, lambda w: w["status"] == "disabled")
        assert "410" in disabled["disabled_reason"]
        deliveries = await wait_deliveries(stack.http, sub["id"], user.headers, lambda d: d and d[0]["status"] == "failed")
        assert [a["status_code"] for a in deliveries[0]["attempts"]] == [410]
        assert len(rx.requests) == 1, "410 is final: no retries"
        ping = json.loads(rx.requests[0].body)
        assert ping["event"] == "ping" and rx.requests[0].headers["webhook-id"] == ping["id"]
        assert_signed(rx.requests[0], sub["secret"])

    r = await stack.http.delete(f"/v1/webhooks/{sub['id']}", headers=user.headers)
    assert r.status_code == 204
    for path in (f"/v1/webhooks/{sub['id']}", f"/v1/webhooks/{sub['id']}/deliveries"):
        r = await stack.http.get(path, headers=user.headers)
        assert r.status_code == 404 and r.json()["code"] == "webhook_not_found"
    r = await stack.http.delete(f"/v1/webhooks/{sub['id']}", headers=user.headers)
    assert r.status_code == 404


@pytest.mark.postgres
async def test_redeliver_keeps_webhook_id(stack, make_user):
    user = await make_user(scopes=ALL_SCOPES)
    async with Receiver() as rx:
        sub = await subscribe(stack.http, user.headers, rx.url, ["*"])
        r = await stack.http.post(f"/v1/webhooks/{sub['id']}/test", headers=user.headers)
        first = r.json()
        await rx.wait_for(1)
        await wait_deliveries(stack.http, sub["id"], user.headers, lambda d: d and d[0]["status"] == "delivered")
        r = await stack.http.post(
            f"/v1/webhooks/{sub['id']}/deliveries/{first['id']}/redeliver", headers=user.headers
        )
        assert r.status_code == 202, r.text
        again = r.json()
        assert again["id"] != first["id"] and again["redelivery_of"] == first["id"]
        assert again["event_id"] == first["event_id"]
        reqs = await rx.wait_for(2)
        assert reqs[0].headers["webhook-id"] == reqs[1].headers["webhook-id"] == first["event_id"]
        assert reqs[0].body == reqs[1].body
        assert reqs[1].headers["x-codetether-delivery"] == again["id"]
        assert_signed(reqs[1], sub["secret"])
        deliveries = await wait_deliveries(
            stack.http, sub["id"], user.headers, lambda d: len(d) == 2 and all(x["status"] == "delivered" for x in d)
        )
        assert deliveries[0]["id"] == again["id"], "newest first"

        r = await stack.http.post(f"/v1/webhooks/{sub['id']}/deliveries/dlv_nope/redeliver", headers=user.headers)
        assert r.status_code == 404


async def test_per_task_webhook_url_gets_needs_input_and_terminal(stack, make_user):
    user = await make_user(scopes=ALL_SCOPES)
    async with Receiver() as rx:
        r = await stack.http.post(
            "/v1/automation/tasks",
            json={"title": "Ask", "prompt": "ASK: Which color?", "webhook_url": rx.url, "webhook_secret": "task-secret-123"},
            headers=user.headers,
        )
        assert r.status_code == 201, r.text
        task_id = r.json()["task_id"]
        waiting = await wait_status(stack.http, task_id, user.headers, {"needs_input"})
        reqs = await rx.wait_for(1)
        assert json.loads(reqs[0].body)["event"] == "task.needs_input"
        assert_signed(reqs[0], "task-secret-123")
        r = await stack.http.post(
            f"/v1/automation/tasks/{task_id}/input",
            json={"message": "blue", "required_action_id": waiting["required_action"]["id"]},
            headers=user.headers,
        )
        assert r.status_code in (200, 202), r.text
        await wait_status(stack.http, task_id, user.headers, {"completed"})
        reqs = await rx.wait_for(2)
        events = [json.loads(q.body)["event"] for q in reqs]
        assert events == ["task.needs_input", "task.completed"]
        assert "task.created" not in events and "task.started" not in events
        for q in reqs:
            assert_signed(q, "task-secret-123")


async def test_per_task_webhook_without_any_secret_is_unsigned(stack, make_user):
    user = await make_user(scopes=ALL_SCOPES)
    async with Receiver() as rx:
        r = await stack.http.post(
            "/v1/automation/tasks", json={"title": "Plain", "prompt": "hi", "webhook_url": rx.url}, headers=user.headers
        )
        assert r.status_code == 201, r.text
        [req] = await rx.wait_for(1)
        payload = json.loads(req.body)
        assert payload["event"] == "task.completed"
        assert req.headers["webhook-id"] == payload["id"]
        assert "x-codetether-signature" not in req.headers and "webhook-signature" not in req.headers
        assert req.headers["x-codetether-event"] == "task.completed"


@pytest.mark.postgres
async def test_fan_out_again_never_duplicates(stack, make_user):
    """A retried recording activity publishes the same event again: same delivery row, same
    workflow (started once), nothing sent twice."""
    from sqlalchemy import func, select

    from codetether.core.models import Task, TaskEvent, WebhookDelivery
    from codetether.webhooks.routing import fan_out, start_delivery

    user = await make_user(scopes=ALL_SCOPES)
    async with Receiver() as rx:
        sub = await subscribe(stack.http, user.headers, rx.url, ["task.completed"])
        r = await stack.http.post("/v1/automation/tasks", json={"title": "once", "prompt": "p"}, headers=user.headers)
        task_id = r.json()["task_id"]
        [first] = await rx.wait_for(1)
        [delivered] = await wait_deliveries(stack.http, sub["id"], user.headers, lambda d: d and d[0]["status"] == "delivered")
        async with stack.db.session() as s:
            event = await s.get(TaskEvent, first.headers["webhook-id"])
            task = await s.get(Task, task_id)
        ids = await fan_out(stack.db, stack.client, stack.settings, event, task)
        assert ids == [delivered["id"]]
        assert await start_delivery(stack.client, stack.settings, delivered["id"]) is None
        async with stack.db.session() as s:
            count = await s.scalar(select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.event_id == event.id))
        assert count == 1
        assert len(rx.requests) == 1
