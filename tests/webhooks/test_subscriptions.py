"""/v1/webhooks CRUD, ownership, validation, secret masking and rotation, save-time SSRF refusal."""

from __future__ import annotations

import json
import shutil

import pytest

from codetether.core.ids import new_id
from codetether.core.models import WebhookSubscription
from codetether.webhooks.signing import generate_secret
from tests.conftest import running_stack, wait_status
from tests.support.receiver import Receiver
from tests.webhooks.helpers import expected_v1, wait_deliveries
from tests.webhooks.test_delivery import ALL_SCOPES, subscribe
from tests.webhooks.test_signing import run_n8n_snippet


@pytest.mark.postgres
async def test_crud_masking_and_ownership(stack, make_user):
    alice = await make_user(scopes=ALL_SCOPES)
    bob = await make_user(scopes=ALL_SCOPES)
    api = stack.http
    sub = await subscribe(api, alice.headers, "http://127.0.0.1:9/hook", ["task.completed", "task.completed"],
                          description="mine")
    assert sub["events"] == ["task.completed"] and sub["status"] == "active"
    assert sub["description"] == "mine" and sub["secret"].startswith("whsec_") and len(sub["secret"]) > 40
    r = await api.get(f"/v1/webhooks/{sub['id']}", headers=alice.headers)
    assert r.status_code == 200
    assert r.json()["secret"] != sub["secret"] and sub["secret"][-4:] in r.json()["secret"]
    listed = (await api.get("/v1/webhooks", headers=alice.headers)).json()["data"]
    assert [w["id"] for w in listed] == [sub["id"]] and listed[0]["secret"] != sub["secret"]

    # Someone else's subscription does not exist for bob.
    assert (await api.get("/v1/webhooks", headers=bob.headers)).json()["data"] == []
    for method, path in [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("GET", "/deliveries"), ("POST", "/test")]:
        r = await api.request(method, f"/v1/webhooks/{sub['id']}{path}", headers=bob.headers,
                              json={"status": "disabled"} if method == "PATCH" else None)
        assert r.status_code == 404, (method, path, r.text)

    r = await api.patch(f"/v1/webhooks/{sub['id']}", json={"events": ["*"], "status": "disabled"}, headers=alice.headers)
    assert r.status_code == 200, r.text
    assert r.json()["events"] == ["*"] and r.json()["status"] == "disabled"
    assert r.json()["secret"] != sub["secret"], "no rotation: still masked"
    r = await api.post(f"/v1/webhooks/{sub['id']}/test", headers=alice.headers)
    assert r.status_code == 409 and r.json()["code"] == "webhook_disabled"
    r = await api.patch(f"/v1/webhooks/{sub['id']}", json={"status": "active"}, headers=alice.headers)
    assert r.json()["status"] == "active" and r.json()["disabled_reason"] is None


async def test_validation_and_scope(stack, make_user):
    user = await make_user(scopes=ALL_SCOPES)
    api = stack.http
    r = await api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/", "events": ["task.done"]}, headers=user.headers)
    assert r.status_code == 422 and r.json()["code"] == "invalid_event_type"
    r = await api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/", "events": []}, headers=user.headers)
    assert r.status_code == 422
    r = await api.post("/v1/webhooks", json={"url": "ftp://x/", "events": ["*"]}, headers=user.headers)
    assert r.status_code == 422 and r.json()["code"] == "invalid_webhook_url"
    r = await api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/", "events": ["*"], "bogus": 1},
                       headers=user.headers)
    assert r.status_code == 422
    r = await api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/", "events": ["*"], "secret": "my-own-secret-123456"},
                       headers=user.headers)
    assert r.status_code == 201 and r.json()["secret"] == "my-own-secret-123456"
    reader = await make_user(scopes=["tasks:read"])
    r = await api.get("/v1/webhooks", headers=reader.headers)
    assert r.status_code == 403 and r.json()["code"] == "insufficient_scope"
    r = await api.get("/v1/webhooks")
    assert r.status_code == 401


async def test_secret_rotation_signs_with_both(stack, make_user):
    user = await make_user(scopes=ALL_SCOPES)
    async with Receiver() as rx:
        sub = await subscribe(stack.http, user.headers, rx.url, ["*"])
        r = await stack.http.patch(f"/v1/webhooks/{sub['id']}", json={"rotate_secret": True}, headers=user.headers)
        assert r.status_code == 200, r.text
        rotated = r.json()
        new_secret = rotated["secret"]
        assert new_secret.startswith("whsec_") and new_secret != sub["secret"]
        assert rotated["previous_secret_expires_at"] is not None
        await stack.http.post(f"/v1/webhooks/{sub['id']}/test", headers=user.headers)
        [req] = await rx.wait_for(1)
        h = req.headers
        sigs = h["webhook-signature"].split(" ")
        assert sigs == [expected_v1(new_secret, h["webhook-id"], h["webhook-timestamp"], req.body),
                        expected_v1(sub["secret"], h["webhook-id"], h["webhook-timestamp"], req.body)]


async def test_save_time_refusal_without_allow_private(settings, temporal_env, db, make_user, tmp_path):
    strict = settings.model_copy(update={"webhook_allow_private": False})
    user = await make_user(scopes=ALL_SCOPES)
    async with running_stack(strict, temporal_env.client, db, worker=False) as s:
        for url in ["http://127.0.0.1:9/hook", "https://127.0.0.1/hook", "https://localhost/hook",
                    "https://[::ffff:127.0.0.1]/hook", "https://169.254.169.254/", "https://10.0.0.1/",
                    "https://100.64.0.1/"]:
            r = await s.http.post("/v1/webhooks", json={"url": url, "events": ["*"]}, headers=user.headers)
            assert r.status_code == 422, (url, r.text)
            assert r.json()["code"] == "invalid_webhook_url"
            r = await s.http.post("/v1/automation/tasks", json={"title": "t", "prompt": "p", "webhook_url": url},
                                  headers=user.headers)
            assert r.status_code == 422, (url, r.text)
        sub = (await s.http.get("/v1/webhooks", headers=user.headers)).json()["data"]
        assert sub == []
        # An existing subscription cannot be pointed at a private address either.
        row = WebhookSubscription(id=new_id("whk"), user_id=user.user_id, url="https://93.184.216.34/hook",
                                  events=["*"], secret=generate_secret(), previous_secrets=[])
        async with db.session() as ses:
            ses.add(row)
            await ses.commit()
        r = await s.http.patch(f"/v1/webhooks/{row.id}", json={"url": "https://10.0.0.1/"}, headers=user.headers)
        assert r.status_code == 422 and r.json()["code"] == "invalid_webhook_url"
        r = await s.http.get(f"/v1/webhooks/{row.id}", headers=user.headers)
        assert r.json()["url"] == "https://93.184.216.34/hook"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
async def test_real_delivery_passes_the_n8n_code_node(stack, make_user):
    user = await make_user(scopes=ALL_SCOPES)
    async with Receiver() as rx:
        sub = await subscribe(stack.http, user.headers, rx.url, ["task.completed"], secret="n8n-shared-secret-42")
        r = await stack.http.post(
            "/v1/automation/tasks",
            json={"title": "Ünïcode \u2028 title", "prompt": "hi", "metadata": {"2": 2.0, "1": "a", "x": {"y": 1e-7}}},
            headers=user.headers,
        )
        task_id = r.json()["task_id"]
        await wait_status(stack.http, task_id, user.headers, {"completed"})
        [req] = await rx.wait_for(1)
        done = run_n8n_snippet(req.body, req.headers, sub["secret"])
        assert done.returncode == 0, done.stderr
        assert done.stdout.encode() == req.body
        assert json.loads(req.body)["metadata"] == {"1": "a", "2": 2, "x": {"y": 1e-7}}
        await wait_deliveries(stack.http, sub["id"], user.headers, lambda d: d and d[0]["status"] == "delivered")


async def test_deliveries_are_paginated_newest_first(stack, make_user):
    user = await make_user(scopes=ALL_SCOPES)
    async with Receiver() as rx:
        sub = await subscribe(stack.http, user.headers, rx.url, ["*"])
        sent = []
        for _ in range(3):
            r = await stack.http.post(f"/v1/webhooks/{sub['id']}/test", headers=user.headers)
            sent.append(r.json()["id"])
        await wait_deliveries(stack.http, sub["id"], user.headers,
                              lambda d: len(d) == 3 and all(x["status"] == "delivered" for x in d))
        r = await stack.http.get(f"/v1/webhooks/{sub['id']}/deliveries", params={"limit": 2}, headers=user.headers)
        page1 = r.json()
        assert [d["id"] for d in page1["data"]] == sent[::-1][:2] and page1["next_cursor"]
        r = await stack.http.get(f"/v1/webhooks/{sub['id']}/deliveries",
                                 params={"limit": 2, "cursor": page1["next_cursor"]}, headers=user.headers)
        page2 = r.json()
        assert [d["id"] for d in page2["data"]] == [sent[0]] and page2["next_cursor"] is None
        r = await stack.http.get(f"/v1/webhooks/{sub['id']}/deliveries", params={"status": "failed"}, headers=user.headers)
        assert r.json()["data"] == []
