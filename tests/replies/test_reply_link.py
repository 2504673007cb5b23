"""Signed reply links (``/r/<token>``) through the real stack: the answer reaches the model as its
``ask_user`` tool result, a link answers once, and a tampered, expired, cross-task, revoked or
other-channel link is a bare 404."""

from __future__ import annotations

import time
from datetime import UTC

import pytest

from codetether.replies.tokens import link_expiry, sign_email, sign_link
from tests.conftest import wait_status
from tests.replies.conftest import PUBLIC_URL, link_path
from tests.support.providers import (  # noqa: F401
    anthropic_server,
    openai_server,
    provider_env,
    provider_stack,
)

TASKS = "/v1/automation/tasks"


async def _create(stack, user, **body) -> dict:
    body.setdefault("title", "Paint the shed")
    body.setdefault("description", "Paint it\nASK: Which color?")
    r = await stack.http.post(TASKS, json=body, headers=user.headers)
    assert r.status_code == 201, r.text
    return r.json()


async def _events(stack, task_id, user) -> list[dict]:
    r = await stack.http.get(f"{TASKS}/{task_id}/events", headers=user.headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def _assert_bare_404(r, *secrets: str) -> None:
    assert r.status_code == 404, r.text
    for s in secrets:
        assert s not in r.text


@pytest.mark.postgres
async def test_json_answer_reaches_the_model_and_the_link_works_once(provider_stack, user, openai_server):
    stack = provider_stack
    openai_server.reply_ask_user("Which color should the shed be?").reply_text("Painted it green.")
    task = await _create(stack, user, model="gpt-4o", description="Paint the shed.")
    waiting = await wait_status(stack.http, task["task_id"], user.headers, {"needs_input"}, timeout=60)
    action = waiting["required_action"]
    assert action["prompt"] == "Which color should the shed be?"
    assert action["reply_url"].startswith(f"{PUBLIC_URL}/r/")
    path = link_path(action["reply_url"])
    # The same link in the task.needs_input event (what webhooks carry) as on the task.
    [asked] = [e for e in await _events(stack, task["task_id"], user) if e["event"] == "task.needs_input"]
    assert asked["data"]["required_action"]["reply_url"] == action["reply_url"]

    page = await stack.http.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Paint the shed" in page.text and "Which color should the shed be?" in page.text
    assert "<script" not in page.text and "http" not in page.text.split("<body>")[1]  # no external assets
    assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"

    r = await stack.http.post(path, json={"message": "Green, please."})
    assert r.status_code == 200, r.text
    assert r.json() == {"answered": True, "required_action_id": action["id"]}
    # Nothing else: no result, no task object.
    assert "result" not in r.text and "Painted" not in r.text

    done = await wait_status(stack.http, task["task_id"], user.headers, {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed", done
    assert done["result"] == "Painted it green."
    assert done["required_action"] is None
    second = openai_server.chat_requests()[1].body["messages"]
    assert second[-1]["role"] == "tool" and second[-1]["content"] == "Green, please."

    events = await _events(stack, task["task_id"], user)
    [msg] = [e for e in events if e["event"] == "task.message"]
    assert msg["message"] == {
        "kind": "reply", "via": "link", "from": None, "required_action_id": action["id"], "text": "Green, please.",
    }
    kinds = [e["event"] for e in events]
    assert kinds.index("task.needs_input") < kinds.index("task.message") < kinds.index("task.completed")

    again = await stack.http.post(path, json={"message": "Red!"})
    assert again.status_code == 409, again.text
    assert again.headers["content-type"].startswith("application/problem+json")
    assert again.json()["code"] == "stale_required_action"
    shown = await stack.http.get(path)
    assert shown.status_code == 409 and "already answered" in shown.text
    assert "Painted it green" not in shown.text
    form = await stack.http.post(path, data={"message": "Red!"})
    assert form.status_code == 409 and "already answered" in form.text
    assert len(openai_server.chat_requests()) == 2


async def test_bad_links_are_bare_404s_and_grant_nothing(stack, user, make_user):
    a = await _create(stack, user, title="Secret project alpha")
    b = await _create(stack, user, title="Other task")
    wa = await wait_status(stack.http, a["task_id"], user.headers, {"needs_input"})
    wb = await wait_status(stack.http, b["task_id"], user.headers, {"needs_input"})
    path = link_path(wa["required_action"]["reply_url"])
    token = path.removeprefix("/r/")
    s = stack.settings
    exp = int(time.time()) + 3600
    hidden = (a["task_id"], "Secret project alpha", "Which color?")

    tampered = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    cases = {
        "tampered": tampered,
        "truncated": token[:-10],
        "garbage": "not-a-token",
        "expired": sign_link(s, a["task_id"], wa["required_action"]["id"], int(time.time()) - 1),
        # Task B's id with task A's question, correctly signed: still nothing.
        "cross_task": sign_link(s, b["task_id"], wa["required_action"]["id"], exp),
        "other_secret": sign_link(s.model_copy(update={"reply_secret": "another-secret-0123456789"}),
                                  a["task_id"], wa["required_action"]["id"], exp),
        # An email reply token is no link.
        "email_token": sign_email(s, a["task_id"], 1),
    }
    for name, bad in cases.items():
        for method in ("get", "post"):
            r = await getattr(stack.http, method)(f"/r/{bad}", **({"json": {"message": "x"}} if method == "post" else {}))
            _assert_bare_404(r, *hidden)
        assert name  # for the failure message
    r = await stack.http.post(f"/r/{tampered}", json={"message": "x"})
    assert r.headers["content-type"].startswith("application/problem+json") and r.json()["code"] == "not_found"

    # The token is no API credential, and task B's link does not reach task A.
    r = await stack.http.get(f"{TASKS}/{a['task_id']}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    r = await stack.http.post(link_path(wb["required_action"]["reply_url"]), json={"message": "Blue"})
    assert r.status_code == 200, r.text
    still = await stack.http.get(f"{TASKS}/{a['task_id']}", headers=user.headers)
    assert still.json()["status"] == "needs_input"
    assert (await stack.http.get(path)).status_code == 200

    # Revoked when the task leaves needs_input without an answer (cancelled).
    r = await stack.http.delete(f"{TASKS}/{a['task_id']}", headers=user.headers)
    assert r.status_code in (200, 202), r.text
    await wait_status(stack.http, a["task_id"], user.headers, {"cancelled"})
    _assert_bare_404(await stack.http.get(path), *hidden)
    _assert_bare_404(await stack.http.post(path, json={"message": "too late"}), *hidden)


async def test_answers_via_api_are_recorded_with_the_caller(stack, user):
    from tests.support.receiver import Receiver

    async with Receiver() as receiver:
        r = await stack.http.post("/v1/webhooks", json={"url": receiver.url, "events": ["*"]}, headers=user.headers)
        assert r.status_code == 201, r.text
        task = await _create(stack, user)
        waiting = await wait_status(stack.http, task["task_id"], user.headers, {"needs_input"})
        r = await stack.http.post(f"{TASKS}/{task['task_id']}/input", json={"message": "Blue"}, headers=user.headers)
        assert r.status_code == 200, r.text
        await wait_status(stack.http, task["task_id"], user.headers, {"completed"})
        # Subscribers of every event get the task's events, but never the log-only task.message.
        got = await receiver.wait_for(1, predicate=lambda rec: rec.headers.get("x-codetether-event") == "task.completed")
        assert got
        kinds = {rec.headers.get("x-codetether-event") for rec in receiver.requests}
        assert "task.needs_input" in kinds and "task.message" not in kinds
    [msg] = [e for e in await _events(stack, task["task_id"], user) if e["event"] == "task.message"]
    assert msg["message"]["via"] == "api" and msg["message"]["from"] == user.email
    assert msg["message"]["required_action_id"] == waiting["required_action"]["id"]
    # The API's answer used up the link too.
    r = await stack.http.post(link_path(waiting["required_action"]["reply_url"]), json={"message": "Red"})
    assert r.status_code == 409 and r.json()["code"] == "stale_required_action"


async def test_each_link_is_rate_limited(stack, user):
    task = await _create(stack, user)
    waiting = await wait_status(stack.http, task["task_id"], user.headers, {"needs_input"})
    path = link_path(waiting["required_action"]["reply_url"])
    limit = stack.settings.reply_link_rate_per_minute
    for _ in range(limit):
        assert (await stack.http.get(path)).status_code == 200
    r = await stack.http.post(path, json={"message": "Blue"})
    assert r.status_code == 429 and r.json()["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
    # Another link is not affected by this one's limit; the question is still open.
    assert (await stack.http.get(f"{TASKS}/{task['task_id']}", headers=user.headers)).json()["status"] == "needs_input"


async def test_a_blank_answer_is_refused_and_changes_nothing(stack, user):
    task = await _create(stack, user)
    waiting = await wait_status(stack.http, task["task_id"], user.headers, {"needs_input"})
    path = link_path(waiting["required_action"]["reply_url"])
    r = await stack.http.post(path, json={"message": "   "})
    assert r.status_code == 422 and r.json()["code"] == "invalid_message"
    r = await stack.http.post(path, data={"message": ""})
    assert r.status_code == 422 and "Which color?" in r.text
    r = await stack.http.post(path, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert (await stack.http.get(f"{TASKS}/{task['task_id']}", headers=user.headers)).json()["status"] == "needs_input"
    assert (await stack.http.post(path, data={"message": "Blue"})).status_code == 200


def test_link_lifetime_is_the_setting_capped_by_the_input_timeout(settings):
    from datetime import datetime

    asked = datetime(2026, 1, 1, tzinfo=UTC)
    base = int(asked.timestamp())
    assert link_expiry(settings, asked, None) == base + 7 * 86400
    assert link_expiry(settings, asked, 3600) == base + 3600
    assert link_expiry(settings, asked, 30 * 86400) == base + 7 * 86400
    assert link_expiry(settings.model_copy(update={"reply_link_ttl_seconds": 60}), asked, None) == base + 60


async def test_no_reply_url_without_a_reply_secret(temporal_address, database_url, tmp_path, temporal_env, db, user):
    from tests.conftest import make_settings, running_stack

    plain = make_settings(temporal_address, database_url, tmp_path)
    async with running_stack(plain, temporal_env.client, db) as s:
        task = await _create(s, user)
        waiting = await wait_status(s.http, task["task_id"], user.headers, {"needs_input"})
        assert waiting["required_action"]["reply_url"] is None
        assert (await s.http.get("/r/anything")).status_code == 404


@pytest.mark.postgres
async def test_two_answers_at_once_one_wins(stack, make_user):
    import asyncio

    free = await make_user(tier="free")  # a concurrency-limited run: it queues for a slot after the answer
    task = await _create(stack, free)
    waiting = await wait_status(stack.http, task["task_id"], free.headers, {"needs_input"})
    path = link_path(waiting["required_action"]["reply_url"])
    first, second = await asyncio.gather(
        stack.http.post(path, json={"message": "Blue"}), stack.http.post(path, json={"message": "Red"})
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409], (first.text, second.text)
    loser = first if first.status_code == 409 else second
    assert loser.json()["code"] == "stale_required_action"
    winner = "Blue" if first.status_code == 200 else "Red"
    done = await wait_status(stack.http, task["task_id"], free.headers, {"completed"})
    assert done["result"].startswith(f"Thanks, noted: {winner}.")
    events = await _events(stack, task["task_id"], free)
    assert [e["message"]["text"] for e in events if e["event"] == "task.message"] == [winner]
