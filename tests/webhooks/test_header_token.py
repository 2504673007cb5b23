"""A subscription's ``header_token``: sent as that header on every delivery (for receivers such as
Make that cannot check an HMAC), set at subscribe or patch time, masked in every read."""

from __future__ import annotations

import json

import pytest

from tests.conftest import wait_status
from tests.support.receiver import Receiver
from tests.webhooks.helpers import assert_signed

ALL_SCOPES = ["tasks:read", "tasks:write", "messages:write", "webhooks:manage"]
TOKEN = "make-shared-token-0123456789abcdef"


async def ping(api, headers, webhook_id: str) -> None:
    r = await api.post(f"/v1/webhooks/{webhook_id}/test", headers=headers)
    assert r.status_code == 202, r.text


@pytest.mark.postgres
async def test_header_token_on_every_delivery_and_masked_in_every_read(stack, make_user):
    user = await make_user(scopes=ALL_SCOPES)
    async with Receiver() as rx:
        r = await stack.http.post(
            "/v1/webhooks",
            json={"url": rx.url, "events": ["task.completed"], "header_token": {"value": TOKEN}},
            headers=user.headers,
        )
        assert r.status_code == 201, r.text
        sub = r.json()
        assert sub["secret"].startswith("whsec_"), "the signing secret is still shown once"
        assert sub["header_token"] == {"name": "X-CodeTether-Token", "value": "…" + TOKEN[-4:]}
        assert TOKEN not in r.text
        for path in ("/v1/webhooks", f"/v1/webhooks/{sub['id']}"):
            got = await stack.http.get(path, headers=user.headers)
            assert got.status_code == 200 and TOKEN not in got.text
        listed = (await stack.http.get("/v1/webhooks", headers=user.headers)).json()["data"]
        assert [w["header_token"] for w in listed if w["id"] == sub["id"]] == [sub["header_token"]]

        r = await stack.http.post("/v1/automation/tasks", json={"title": "t", "prompt": "hi"}, headers=user.headers)
        await wait_status(stack.http, r.json()["task_id"], user.headers, {"completed"})
        await ping(stack.http, user.headers, sub["id"])
        reqs = await rx.wait_for(2)
        assert sorted(json.loads(q.body)["event"] for q in reqs) == ["ping", "task.completed"]
        for q in reqs:
            assert q.headers["x-codetether-token"] == TOKEN
            assert_signed(q, sub["secret"])
        deliveries = await stack.http.get(f"/v1/webhooks/{sub['id']}/deliveries", headers=user.headers)
        assert TOKEN not in deliveries.text


async def test_patch_sets_replaces_keeps_and_removes_the_header_token(stack, make_user):
    user = await make_user(scopes=ALL_SCOPES)
    async with Receiver() as rx:
        r = await stack.http.post("/v1/webhooks", json={"url": rx.url, "events": ["*"]}, headers=user.headers)
        sub = r.json()
        assert sub["header_token"] is None

        r = await stack.http.patch(
            f"/v1/webhooks/{sub['id']}",
            json={"header_token": {"name": "Authorization", "value": "Bearer " + TOKEN}},
            headers=user.headers,
        )
        assert r.status_code == 200, r.text
        assert r.json()["header_token"] == {"name": "Authorization", "value": "…" + TOKEN[-4:]}
        assert TOKEN not in r.text
        assert "…" in r.json()["secret"], "the signing secret stays masked"
        await ping(stack.http, user.headers, sub["id"])
        [first] = await rx.wait_for(1)
        assert first.headers["authorization"] == "Bearer " + TOKEN

        # A PATCH that does not mention it keeps it.
        r = await stack.http.patch(f"/v1/webhooks/{sub['id']}", json={"description": "renamed"}, headers=user.headers)
        assert r.json()["header_token"]["name"] == "Authorization"
        await ping(stack.http, user.headers, sub["id"])
        reqs = await rx.wait_for(2)
        assert reqs[1].headers["authorization"] == "Bearer " + TOKEN

        # null removes it.
        r = await stack.http.patch(f"/v1/webhooks/{sub['id']}", json={"header_token": None}, headers=user.headers)
        assert r.status_code == 200 and r.json()["header_token"] is None
        await ping(stack.http, user.headers, sub["id"])
        reqs = await rx.wait_for(3)
        assert "authorization" not in reqs[2].headers and "x-codetether-token" not in reqs[2].headers


@pytest.mark.parametrize(
    "token, code",
    [
        ({"value": "short"}, None),
        ({"value": "line\r\nInjected: yes" + "x" * 20}, None),
        ({"name": "Bad Name", "value": TOKEN}, None),
        ({"name": "X-CodeTether-Signature", "value": TOKEN}, "invalid_header_token"),
        ({"name": "webhook-id", "value": TOKEN}, "invalid_header_token"),
        ({"name": "content-type", "value": TOKEN}, "invalid_header_token"),
        ({"name": "X-CodeTether-Token"}, None),
        ({"value": TOKEN, "extra": 1}, None),
    ],
)
async def test_invalid_header_tokens_are_422_and_nothing_is_saved(stack, make_user, token, code):
    user = await make_user(scopes=ALL_SCOPES)
    r = await stack.http.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["*"], "header_token": token},
        headers=user.headers,
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    if code:
        assert r.json()["code"] == code
    assert (await stack.http.get("/v1/webhooks", headers=user.headers)).json()["data"] == []

    r = await stack.http.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["*"]}, headers=user.headers)
    sub = r.json()
    r = await stack.http.patch(f"/v1/webhooks/{sub['id']}", json={"header_token": token}, headers=user.headers)
    assert r.status_code == 422, r.text
    assert (await stack.http.get(f"/v1/webhooks/{sub['id']}", headers=user.headers)).json()["header_token"] is None
