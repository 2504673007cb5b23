"""A task's own destinations end to end (real API, Temporal, worker and receivers on 127.0.0.1):
``callback_url`` gets exactly one POST, the terminal event, once; ``webhook_events`` chooses what
``webhook_url`` gets; a ``409`` is retried on the schedule and never counts toward disabling."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlalchemy import update

from codetether.core.ids import utcnow
from codetether.core.models import WebhookSubscription
from tests.conftest import wait_status
from tests.support.receiver import Receiver
from tests.webhooks.helpers import assert_signed, wait_deliveries, wait_webhook

ALL_SCOPES = ["tasks:read", "tasks:write", "messages:write", "webhooks:manage"]
TASKS = "/v1/automation/tasks"


def events_of(rx: Receiver) -> list[str]:
    return [json.loads(q.body)["event"] for q in rx.requests]


@pytest.mark.postgres
async def test_callback_gets_only_the_terminal_event_once_beside_webhook_url(stack, make_user):
    user = await make_user(scopes=ALL_SCOPES)
    async with Receiver() as hook, Receiver() as resume:
        r = await stack.http.post(
            TASKS,
            json={
                "title": "Ask first",
                "prompt": "ASK: Which color?",
                "webhook_url": hook.url,
                "callback_url": resume.url,
                "webhook_secret": "task-secret-123",
            },
            headers=user.headers,
        )
        assert r.status_code == 201, r.text
        created = r.json()
        assert created["webhook_url"] == hook.url and created["callback_url"] == resume.url
        task_id = created["task_id"]

        waiting = await wait_status(stack.http, task_id, user.headers, {"needs_input"})
        await hook.wait_for(1)
        assert events_of(hook) == ["task.needs_input"]
        assert resume.requests == [], "the resume URL is not woken by a question"

        r = await stack.http.post(
            f"{TASKS}/{task_id}/input",
            json={"message": "blue", "required_action_id": waiting["required_action"]["id"]},
            headers=user.headers,
        )
        assert r.status_code in (200, 202), r.text
        done = await wait_status(stack.http, task_id, user.headers, {"completed"})
        [callback] = await resume.wait_for(1)
        await hook.wait_for(2)
        assert events_of(hook) == ["task.needs_input", "task.completed"]

        payload = json.loads(callback.body)
        assert payload["event"] == "task.completed" and payload["task_id"] == task_id
        assert payload["status"] == "completed" and payload["result"] == done["result"]
        assert payload["data"]["callback_url"] == resume.url and payload["data"]["webhook_url"] == hook.url
        assert_signed(callback, "task-secret-123")
        # Both destinations carry the same event (same webhook-id), as separate deliveries.
        assert callback.headers["webhook-id"] == hook.requests[1].headers["webhook-id"]
        assert callback.headers["x-codetether-delivery"] != hook.requests[1].headers["x-codetether-delivery"]

        # A follow-up run ends with a second terminal event: webhook_url gets it, the resume URL
        # (already used) does not.
        r = await stack.http.post(f"{TASKS}/{task_id}/messages", json={"message": "and now green"}, headers=user.headers)
        assert r.status_code in (200, 202), r.text
        await wait_status(stack.http, task_id, user.headers, {"completed"})
        await hook.wait_for(3)
        assert events_of(hook)[-1] == "task.completed"
        await asyncio.sleep(0.5)
        assert len(resume.requests) == 1, "callback_url receives exactly one POST"


async def test_callback_only_task_gets_cancelled_event(stack, make_user):
    user = await make_user(scopes=ALL_SCOPES)
    async with Receiver() as resume:
        r = await stack.http.post(
            TASKS, json={"title": "Wait", "prompt": "ASK: ok?", "callback_url": resume.url}, headers=user.headers
        )
        task_id = r.json()["task_id"]
        await wait_status(stack.http, task_id, user.headers, {"needs_input"})
        r = await stack.http.delete(f"{TASKS}/{task_id}", headers=user.headers)
        assert r.status_code == 200, r.text
        [req] = await resume.wait_for(1)
        assert json.loads(req.body)["event"] == "task.cancelled"
        # Unsigned without any secret, like webhook_url.
        assert "x-codetether-signature" not in req.headers


async def test_webhook_events_choose_what_webhook_url_gets(stack, make_user):
    user = await make_user(scopes=ALL_SCOPES)
    async with Receiver() as hook:
        r = await stack.http.post(
            TASKS,
            json={
                "title": "Chosen events",
                "prompt": "hi",
                "webhook_url": hook.url,
                "webhook_events": ["task.started", "task.created", "task.completed", "task.created"],
            },
            headers=user.headers,
        )
        assert r.status_code == 201, r.text
        task_id = r.json()["task_id"]
        await wait_status(stack.http, task_id, user.headers, {"completed"})
        await hook.wait_for(3)
        await asyncio.sleep(0.5)
        assert sorted(events_of(hook)) == ["task.completed", "task.created", "task.started"]
        assert all(json.loads(q.body)["task_id"] == task_id for q in hook.requests)


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"webhook_events": ["task.finished"]}, "webhook_events"),
        ({"webhook_events": []}, "webhook_events"),
        ({"webhook_events": "task.completed"}, "webhook_events"),
        ({"callback_url": "ftp://127.0.0.1/hook"}, "callback_url"),
    ],
)
async def test_bad_webhook_events_or_callback_url_are_422(stack, make_user, extra, field):
    user = await make_user(scopes=ALL_SCOPES)
    before = (await stack.http.get(TASKS, headers=user.headers)).json()["data"]
    r = await stack.http.post(
        TASKS, json={"title": "t", "prompt": "p", "webhook_url": "http://127.0.0.1:9/x", **extra}, headers=user.headers
    )
    assert r.status_code == 422, r.text
    body = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert any(field in json.dumps(e) for e in body.get("errors", [])), body
    assert (await stack.http.get(TASKS, headers=user.headers)).json()["data"] == before, "nothing half-written"


async def test_409_from_a_resume_url_is_retried_until_it_accepts(stack, make_user):
    """n8n's resume URL answers 409 until its run reaches the Wait node."""
    user = await make_user(scopes=ALL_SCOPES)
    async with Receiver() as resume:
        resume.script([409, 409], default=200)
        r = await stack.http.post(TASKS, json={"title": "r", "prompt": "hi", "callback_url": resume.url}, headers=user.headers)
        task_id = r.json()["task_id"]
        reqs = await resume.wait_for(3)
        assert len({q.headers["webhook-id"] for q in reqs}) == 1, "three attempts of one event"
        assert {q.body for q in reqs} == {reqs[0].body}
        assert json.loads(reqs[0].body)["event"] == "task.completed"
        assert json.loads(reqs[0].body)["task_id"] == task_id
        await asyncio.sleep(0.5)
        assert len(resume.requests) == 3, "delivered on the third attempt; nothing after"


@pytest.mark.postgres
async def test_409_never_counts_toward_disabling_a_subscription(stack, make_user):
    user = await make_user(scopes=ALL_SCOPES)
    async with Receiver() as rx:
        rx.script([], default=409)
        r = await stack.http.post("/v1/webhooks", json={"url": rx.url, "events": ["*"]}, headers=user.headers)
        sub = r.json()
        # Failing for longer than the 3 days after which another failure disables it.
        async with stack.db.write_session() as s:
            await s.execute(
                update(WebhookSubscription)
                .where(WebhookSubscription.id == sub["id"])
                .values(failing_since=utcnow() - timedelta(days=4))
            )
            await s.commit()
        r = await stack.http.post(f"/v1/webhooks/{sub['id']}/test", headers=user.headers)
        assert r.status_code == 202, r.text
        [dlv] = await wait_deliveries(stack.http, sub["id"], user.headers, lambda d: d and d[0]["status"] != "pending")
        # The short test schedule has 3 retries: 4 attempts, all 409, then the delivery ends.
        assert [a["status_code"] for a in dlv["attempts"]] == [409, 409, 409, 409]
        assert dlv["status"] == "failed"
        got = await wait_webhook(stack.http, sub["id"], user.headers, lambda w: True)
        assert got["status"] == "active" and got["disabled_reason"] is None

        # The same subscription answering 500 instead is disabled by the same rule.
        rx.script([], default=500)
        await stack.http.post(f"/v1/webhooks/{sub['id']}/test", headers=user.headers)
        disabled = await wait_webhook(stack.http, sub["id"], user.headers, lambda w: w["status"] == "disabled")
        assert "failed since" in disabled["disabled_reason"]
