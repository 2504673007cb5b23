"""The packed package inside a running n8n 2.41 (`n8n start`) against `codetether dev`:
the CodeTether Trigger subscribes on publish, receives a signed `task.completed`, refuses forged
deliveries without starting an execution and unsubscribes on deactivation; the webhook-callback
template resumes a Wait node through `$execution.resumeUrl` with no polling.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx

from .harness import CodeTether, N8n, Sink, wait_until
from .workflows import (CALLBACK, CALLBACK_START_PATH, TRIGGER, TRIGGER_TAG, TRIGGER_TAGGED, TRIGGER_TAGGED_WEBHOOK_ID,
                        TRIGGER_WEBHOOK_ID)


def subscriptions(ct: CodeTether) -> list[dict]:
    with ct.client() as api:
        r = api.get("/v1/webhooks")
        assert r.status_code == 200, r.text
        return r.json()["data"]


def create_task(ct: CodeTether, title: str, **extra) -> dict:
    with ct.client() as api:
        r = api.post("/v1/automation/tasks", json={"title": title, "description": f"Say hello for {title}", **extra})
        assert r.status_code == 201, r.text
        return r.json()


def test_trigger_subscribes_receives_signed_events_refuses_forgeries_and_unsubscribes(
    n8n_server: N8n, codetether: CodeTether, sink: Sink
) -> None:
    n8n = n8n_server
    trigger_url = f"{n8n.url}/webhook/{TRIGGER_WEBHOOK_ID}/webhook"
    assert not [s for s in subscriptions(codetether) if s["url"] == trigger_url]

    # Publishing the workflow subscribes its webhook URL (n8n activates in the background).
    n8n.activate(TRIGGER)
    mine = wait_until(lambda: [s for s in subscriptions(codetether) if s["url"] == trigger_url], 60,
                      "the trigger's subscription")
    assert len(mine) == 1, subscriptions(codetether)
    subscription = mine[0]
    assert subscription["events"] == ["task.completed"]
    assert subscription["status"] == "active"
    assert "…" in subscription["secret"], "listed masked: only the trigger holds the secret"

    # A real task's signed task.completed starts the workflow, which forwards the event.
    first = create_task(codetether, "trigger one")
    got = sink.wait_for(lambda b: b.get("via") == "trigger" and b["event"]["task_id"] == first["task_id"])
    event = got["event"]
    assert event["event"] == "task.completed"
    assert event["status"] == "completed"
    assert event["data"]["task_id"] == first["task_id"]
    with codetether.client() as api:
        deliveries = api.get(f"/v1/webhooks/{subscription['id']}/deliveries").json()["data"]
    delivered = [d for d in deliveries if d["task_id"] == first["task_id"]]
    assert delivered and delivered[0]["status"] == "delivered" and delivered[0]["last_status_code"] == 200

    # Forged, unsigned and stale deliveries: 401, and no execution.
    forged_id = "task_forged0000000000000000000"
    body = json.dumps({**event, "task_id": forged_id}, separators=(",", ":")).encode()
    now = str(int(time.time()))
    attempts = {
        "unsigned": {"Content-Type": "application/json"},
        "forged": {"Content-Type": "application/json", "X-CodeTether-Timestamp": now,
                   "X-CodeTether-Signature": "sha256=" + hmac.new(b"guessed-secret", body, hashlib.sha256).hexdigest()},
        "stale": {"Content-Type": "application/json", "X-CodeTether-Timestamp": str(int(time.time()) - 3600),
                  "X-CodeTether-Signature": "sha256=" + "0" * 64},
    }
    for name, headers in attempts.items():
        r = httpx.post(trigger_url, content=body, headers=headers, timeout=30)
        assert r.status_code == 401, (name, r.status_code, r.text)
    # A later genuine event arrives, and nothing from the forgeries came before it.
    second = create_task(codetether, "trigger two")
    sink.wait_for(lambda b: b.get("via") == "trigger" and b["event"]["task_id"] == second["task_id"])
    assert not sink.received(lambda b: b.get("via") == "trigger" and b["event"]["task_id"] == forged_id)

    # Deactivating the workflow deletes the subscription.
    n8n.deactivate(TRIGGER)
    wait_until(lambda: not [s for s in subscriptions(codetether) if s["url"] == trigger_url], 30,
               "the subscription to be deleted")
    with codetether.client() as api:
        assert api.get(f"/v1/webhooks/{subscription['id']}").status_code == 404


def test_trigger_with_tags_runs_only_for_tasks_having_them(n8n_server: N8n, codetether: CodeTether, sink: Sink) -> None:
    n8n = n8n_server
    trigger_url = f"{n8n.url}/webhook/{TRIGGER_TAGGED_WEBHOOK_ID}/webhook"
    n8n.activate(TRIGGER_TAGGED)
    subscription = wait_until(lambda: [s for s in subscriptions(codetether) if s["url"] == trigger_url], 60,
                              "the tagged trigger's subscription")[0]

    untagged = create_task(codetether, "tagged trigger: other", tags=["something-else"])
    tagged = create_task(codetether, "tagged trigger: mine", tags=[TRIGGER_TAG, "extra"])
    got = sink.wait_for(lambda b: b.get("via") == "tagged-trigger" and b["event"]["task_id"] == tagged["task_id"])
    assert got["event"]["data"]["tags"] == [TRIGGER_TAG, "extra"]

    # The other task's event was delivered (and acknowledged with 200), but started nothing.
    def delivered_untagged() -> list[dict]:
        with codetether.client() as api:
            rows = api.get(f"/v1/webhooks/{subscription['id']}/deliveries").json()["data"]
        return [d for d in rows if d["task_id"] == untagged["task_id"] and d["status"] == "delivered"]

    assert wait_until(delivered_untagged, 60, "the untagged event's delivery")[0]["last_status_code"] == 200
    time.sleep(1)
    assert not sink.received(lambda b: b.get("via") == "tagged-trigger" and b["event"]["task_id"] == untagged["task_id"])

    n8n.deactivate(TRIGGER_TAGGED)
    wait_until(lambda: not [s for s in subscriptions(codetether) if s["url"] == trigger_url], 30,
               "the subscription to be deleted")


def test_webhook_callback_template_resumes_through_the_resume_url(
    n8n_server: N8n, codetether: CodeTether, sink: Sink
) -> None:
    n8n = n8n_server
    n8n.activate(CALLBACK)
    before = {s["id"] for s in subscriptions(codetether)}
    # The start webhook answers 404 until n8n has registered it.
    start = wait_until(lambda: (r := httpx.post(n8n.webhook_url(CALLBACK_START_PATH), json={"start": True},
                                                timeout=30)).status_code != 404 and r, 60, "the start webhook")
    assert start.status_code == 200, start.text

    got = sink.wait_for(lambda b: b.get("via") == "callback", timeout=120)
    result = got["result"]
    assert result["status"] == "completed", result
    assert result["task_id"].startswith("task_")
    assert "Draft a release note" in result["result"]
    with codetether.client() as api:
        task = api.get(f"/v1/automation/tasks/{result['task_id']}").json()
    # The task was created with the run's own resume URL, and the workflow never polled:
    # it has no node that reads the task, only the callback resumed it.
    assert task["callback_url"].startswith(f"{n8n.url}/webhook-waiting/"), task
    assert task["status"] == "completed"
    assert {s["id"] for s in subscriptions(codetether)} == before, "no subscription was needed"
    n8n.deactivate(CALLBACK)
