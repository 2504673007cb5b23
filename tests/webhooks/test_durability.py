"""Deliveries survive a receiver outage across a worker restart, and the default long schedule
(8 retries over more than 24 h) runs to the end on the time-skipping test server."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest_asyncio
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from codetether.webhooks.activities import WebhookActivities
from codetether.core import jsoncompact
from codetether.core.config import DEFAULT_WEBHOOK_RETRY_SCHEDULE, Settings
from codetether.core.ids import new_id
from codetether.core.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from codetether.webhooks.signing import generate_secret
from codetether.webhooks.routing import create_delivery
from tests.conftest import (
    make_settings,
    running_stack,
    temporal_test_server,
    wait_status,
)
from tests.support.receiver import Receiver, Reply
from tests.webhooks.helpers import assert_signed, wait_deliveries
from tests.webhooks.test_delivery import ALL_SCOPES, subscribe
from codetether.worker import build_worker
from codetether.webhooks.workflow import DeliveryWorkflow
from codetether.webhooks.contracts import DeliveryInput


async def test_receiver_down_across_worker_restart_loses_nothing(
    temporal_address, database_url, tmp_path: Path, temporal_env, db, make_user
):
    settings = make_settings(
        temporal_address, database_url, tmp_path, webhook_retry_schedule="0.3,0.5,1,1,1,1,1,1,1,1,1,1,1,1,1"
    )
    user = await make_user(scopes=ALL_SCOPES)
    down = await Receiver().start()
    port = down.port
    await down.stop()  # nothing listens on the port: connection refused

    stack_cm = running_stack(settings, temporal_env.client, db)
    stack = await stack_cm.__aenter__()
    try:
        sub = await subscribe(stack.http, user.headers, f"http://127.0.0.1:{port}/hook", ["task.completed"])
        r = await stack.http.post("/v1/automation/tasks", json={"title": "t", "prompt": "p"}, headers=user.headers)
        task_id = r.json()["task_id"]
        await wait_status(stack.http, task_id, user.headers, {"completed"})
        failing = await wait_deliveries(
            stack.http, sub["id"], user.headers, lambda d: d and d[0]["attempt_count"] >= 2
        )
        assert failing[0]["status"] == "pending"
        assert all(a["status_code"] is None and "ConnectError" in a["error"] for a in failing[0]["attempts"])

        # The worker goes away while the delivery waits for its next attempt.
        await stack_cm.worker.shutdown()
        await stack_cm.worker_task
        stack_cm.worker = None

        async with Receiver(port=port) as rx:
            http_client = httpx.AsyncClient()
            worker = build_worker(settings, temporal_env.client, db, http_client)
            worker_task = asyncio.create_task(worker.run())
            try:
                [req] = await rx.wait_for(1, timeout=60)
                done = await wait_deliveries(
                    stack.http, sub["id"], user.headers, lambda d: d and d[0]["status"] == "delivered"
                )
            finally:
                await worker.shutdown()
                await worker_task
                await http_client.aclose()
        payload = json.loads(req.body)
        assert payload["event"] == "task.completed" and payload["task_id"] == task_id
        assert_signed(req, sub["secret"])
        attempts = done[0]["attempts"]
        assert attempts[-1]["status_code"] == 200
        assert len(attempts) >= 3 and all(a["status_code"] is None for a in attempts[:-1])
        assert len(rx.requests) == 1, "delivered once, no duplicates"
    finally:
        await stack_cm.__aexit__(None, None, None)


@pytest_asyncio.fixture(scope="module")
async def skipping_env():
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=temporal_test_server(), test_server_startup_timeout=timedelta(seconds=60)
    )
    try:
        yield env
    finally:
        await env.shutdown()


async def _failing_delivery(db, url: str) -> tuple[WebhookSubscription, WebhookDelivery]:
    user_id = await _user(db)
    sub = WebhookSubscription(id=new_id("whk"), user_id=user_id, url=url, events=["*"], secret=generate_secret(),
                              previous_secrets=[])
    async with db.session() as s:
        s.add(sub)
        await s.commit()
    event_id = new_id("evt")
    payload = jsoncompact.dumps({"id": event_id, "event": "ping", "data": {}})
    dlv = await create_delivery(db, sub=sub, event_id=event_id, event_type="ping", task_id=None, payload=payload)
    return sub, dlv


async def _user(db) -> str:
    from codetether.accounts.service import create_user

    user = await create_user(db, f"ts-{uuid.uuid4().hex[:8]}@example.com", tier="enterprise")
    return user.id


async def _run_delivery(env, settings: Settings, db, dlv_id: str, schedule: list[float]):
    queue = f"ts-{uuid.uuid4().hex[:8]}"
    acts = WebhookActivities(settings=settings, db=db)
    async with Worker(env.client, task_queue=queue, workflows=[DeliveryWorkflow], activities=[acts.attempt_delivery]):
        handle = await env.client.start_workflow(
            DeliveryWorkflow.run, DeliveryInput(delivery_id=dlv_id, schedule=schedule), id=f"webhook-{dlv_id}",
            task_queue=queue,
        )
        result = await handle.result()
        desc = await handle.describe()
    await acts.http.aclose()
    return result, desc


async def test_default_schedule_at_least_8_retries_over_24h(skipping_env, settings, db):
    schedule = Settings(webhook_retry_schedule=DEFAULT_WEBHOOK_RETRY_SCHEDULE).retry_intervals
    assert len(schedule) >= 8 and sum(schedule) * 0.9 >= 24 * 3600
    async with Receiver() as rx:
        rx.script([], default=500)
        sub, dlv = await _failing_delivery(db, rx.url)
        result, desc = await _run_delivery(skipping_env, settings, db, dlv.id, schedule)
        assert len(rx.requests) == len(schedule) + 1
        assert {r.headers["webhook-id"] for r in rx.requests} == {dlv.event_id}
    assert result.status == "failed" and result.attempts == len(schedule) + 1
    assert desc.close_time - desc.start_time >= timedelta(hours=24)
    async with db.session() as s:
        row = await s.get(WebhookDelivery, dlv.id)
        attempts = list((await s.execute(
            select(WebhookAttempt).where(WebhookAttempt.delivery_id == dlv.id).order_by(WebhookAttempt.attempt)
        )).scalars())
        sub_row = await s.get(WebhookSubscription, sub.id)
    assert row.status == "failed" and row.attempt_count == len(schedule) + 1
    assert [a.status_code for a in attempts] == [500] * (len(schedule) + 1)
    assert all(a.next_attempt_at is not None for a in attempts[:-1]) and attempts[-1].next_attempt_at is None
    # About 27.5 h of failures: not yet "failing for days", so the subscription stays active.
    assert sub_row.status == "active" and sub_row.failing_since is not None


async def test_failing_for_days_disables_the_subscription(skipping_env, settings, db):
    async with Receiver() as rx:
        rx.script([], default=503)
        sub, dlv = await _failing_delivery(db, rx.url)
        result, _ = await _run_delivery(skipping_env, settings, db, dlv.id, [86400.0] * 6)
    assert result.status == "failed" and result.attempts < 7
    async with db.session() as s:
        sub_row = await s.get(WebhookSubscription, sub.id)
    assert sub_row.status == "disabled" and "failed since" in sub_row.disabled_reason


async def test_retry_after_lengthens_the_wait(skipping_env, settings, db):
    async with Receiver() as rx:
        rx.script([Reply(503, {"Retry-After": "7200"})], default=200)
        _sub, dlv = await _failing_delivery(db, rx.url)
        result, desc = await _run_delivery(skipping_env, settings, db, dlv.id, [5.0, 5.0])
        assert len(rx.requests) == 2
    assert result.status == "delivered" and result.attempts == 2
    assert desc.close_time - desc.start_time >= timedelta(hours=2)
    async with db.session() as s:
        first = (await s.execute(
            select(WebhookAttempt).where(WebhookAttempt.delivery_id == dlv.id, WebhookAttempt.attempt == 1)
        )).scalar_one()
    assert first.status_code == 503 and first.next_attempt_at is not None
