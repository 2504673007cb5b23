"""Webhook bookkeeping shared by the API and the worker: which destinations an event goes to,
delivery rows, secrets in rotation, and starting the delivery workflow.

The worker's event sink calls :func:`fan_out` after each recorded event; ``codetether/api/rest/routes/webhooks.py``
calls :func:`create_delivery` + :func:`start_delivery` for redeliveries and test pings.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import datetime, timedelta
from importlib import metadata

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from codetether.core.config import Settings
from codetether.core.db import Database
from codetether.core.secretbox import open_text
from codetether.core.ids import as_utc, new_id, parse_iso, ulid, utcnow
from codetether.core.models import A2APushConfig, Task, TaskEvent, WebhookDelivery, WebhookSubscription
from codetether.tasks.contracts import NEEDS_INPUT_EVENT, TERMINAL_EVENTS
from codetether.webhooks.contracts import (
    DELIVERY_PENDING,
    DELIVERY_WORKFLOW,
    DeliveryInput,
    DeliveryResult,
    delivery_workflow_id,
)

log = logging.getLogger(__name__)

try:
    VERSION = metadata.version("codetether")
except metadata.PackageNotFoundError:  # running from a checkout that is not installed
    VERSION = "0.1.0"
USER_AGENT = f"CodeTether-Webhooks/{VERSION}"

# A task's callback_url receives only the terminal events (TERMINAL_EVENTS, the first one, once).
# What a task's own webhook_url receives unless its webhook_events say otherwise.
TASK_WEBHOOK_EVENTS = TERMINAL_EVENTS | {NEEDS_INPUT_EVENT}
PING_EVENT = "ping"
# A subscription whose deliveries have all failed for this long is disabled.
FAILING_DISABLE_AFTER = timedelta(days=3)
# A rotated-out secret keeps signing (as a second webhook-signature value) for this long.
ROTATION_GRACE = timedelta(hours=24)
# The destination keys of a task's own webhook_url and callback_url in deterministic delivery ids.
TASK_DESTINATION = "task"
CALLBACK_DESTINATION = "callback"


def delivery_id_for(event: TaskEvent, destination: str) -> str:
    """A ``dlv_`` id that is the same every time this event is fanned out to this destination, so
    a retried recording activity finds the row (and the workflow) it created before. Still a
    ULID: the event's millisecond plus 80 bits derived from (event id, destination)."""
    created = as_utc(event.created_at) or utcnow()
    digest = hashlib.sha256(f"{event.id}|{destination}".encode()).digest()[:10]
    return "dlv_" + ulid(int(created.timestamp() * 1000), digest)


def subscription_matches(sub: WebhookSubscription, event_type: str) -> bool:
    events = sub.events or []
    return "*" in events or event_type in events


def signing_secrets(sub: WebhookSubscription, settings: Settings, now: datetime | None = None) -> list[str]:
    """The current secret first, then rotated-out secrets still inside their grace period (each
    opened: stored sealed when a key is configured)."""
    now = now or utcnow()
    out = [open_text(settings, sub.secret)]
    for old in sub.previous_secrets or []:
        expires = parse_iso(old.get("expires_at"))
        if expires is not None and expires > now and old.get("secret"):
            plain = open_text(settings, old["secret"])
            if plain not in out:
                out.append(plain)
    return out


def task_secrets(task: Task | None, settings: Settings) -> list[str]:
    """A task's own webhook is signed with its webhook_secret, else the server-wide secret; with
    neither it is sent with the same headers minus the two signature headers."""
    if task is not None and task.webhook_secret:
        return [open_text(settings, task.webhook_secret)]
    return [settings.webhook_secret] if settings.webhook_secret else []


async def start_delivery(client: Client, settings: Settings, delivery_id: str) -> WorkflowHandle | None:
    """Starts the delivery workflow; a second start of the same delivery is a no-op, even after
    the first finished (the id is never reused)."""
    try:
        return await client.start_workflow(
            DELIVERY_WORKFLOW,
            DeliveryInput(delivery_id=delivery_id, schedule=list(settings.retry_intervals)),
            result_type=DeliveryResult,
            id=delivery_workflow_id(delivery_id),
            task_queue=settings.temporal_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            # In the worker (the event sink) the first workflow task runs right here instead of
            # going through a poll: one round trip less between a task finishing and its webhook.
            request_eager_start=True,
        )
    except WorkflowAlreadyStartedError:
        return None


async def fan_out(db: Database, client: Client, settings: Settings, event: TaskEvent, task: Task) -> list[str]:
    """Creates one delivery per destination of ``event`` and starts their workflows. Idempotent."""
    async with db.session() as s:
        rows = await s.execute(
            select(WebhookSubscription).where(
                WebhookSubscription.user_id == task.user_id, WebhookSubscription.status == "active"
            )
        )
        destinations: list[tuple[str | None, str]] = [
            (sub.id, sub.url) for sub in rows.scalars() if subscription_matches(sub, event.type)
        ]
        pushes = list((await s.execute(select(A2APushConfig).where(A2APushConfig.task_id == task.id))).scalars())
    keyed: list[tuple[str | None, str, str]] = [(sub_id, url, sub_id) for sub_id, url in destinations]
    if task.webhook_url and event.type in task_webhook_events(task):
        keyed.append((None, task.webhook_url, TASK_DESTINATION))
    if task.callback_url and event.type in TERMINAL_EVENTS and await _claim_callback(db, task, event):
        keyed.append((None, task.callback_url, CALLBACK_DESTINATION))
    ids = await _fan_out_pushes(db, event, task, pushes)
    if not keyed:
        await asyncio.gather(*(start_delivery(client, settings, did) for did in ids))
        return ids
    for sub_id, url, key in keyed:
        did = delivery_id_for(event, key)
        ids.append(did)
        async with db.session() as s:
            if await s.get(WebhookDelivery, did) is not None:
                continue
            s.add(
                WebhookDelivery(
                    id=did,
                    subscription_id=sub_id,
                    user_id=task.user_id,
                    task_id=task.id,
                    event_id=event.id,
                    event_type=event.type,
                    url=url,
                    status=DELIVERY_PENDING,
                    next_attempt_at=utcnow(),
                )
            )
            try:
                await s.commit()
            except IntegrityError:
                # A concurrent publish of the same event made it first.
                await s.rollback()
    await asyncio.gather(*(start_delivery(client, settings, did) for did in ids))
    return ids


async def _fan_out_pushes(db: Database, event: TaskEvent, task: Task, pushes: list[A2APushConfig]) -> list[str]:
    """Delivery rows for the task's A2A push configs: the body is the A2A status update."""
    if not pushes:
        return []
    from codetether.protocols.a2a_runs import a2a_id_of_run
    from codetether.protocols.a2a_view import push_body

    body = push_body(await a2a_id_of_run(db, task, event.run_id), task.id, event.type, event.body)
    if body is None:
        return []
    ids: list[str] = []
    for push in pushes:
        did = delivery_id_for(event, push.id)
        ids.append(did)
        async with db.session() as s:
            if await s.get(WebhookDelivery, did) is not None:
                continue
            s.add(
                WebhookDelivery(
                    id=did, subscription_id=None, user_id=task.user_id, task_id=task.id, event_id=event.id,
                    event_type=event.type, url=push.url, status=DELIVERY_PENDING, next_attempt_at=utcnow(),
                    payload=body, push_config_id=push.id,
                )
            )
            try:
                await s.commit()
            except IntegrityError:
                await s.rollback()
    return ids


def task_webhook_events(task: Task) -> frozenset[str]:
    return frozenset(task.webhook_events) if task.webhook_events else TASK_WEBHOOK_EVENTS


async def _claim_callback(db: Database, task: Task, event: TaskEvent) -> bool:
    """True if ``event`` is the one terminal event the task's callback_url gets: the first one
    claims the task row (atomically, so concurrent publishers agree); publishing the same event
    again (a retried recording activity) still finds its claim, any later run's does not."""
    async with db.write_session() as s:
        res = await s.execute(
            update(Task)
            .where(Task.id == task.id, Task.callback_event_id.is_(None))
            .values(callback_event_id=event.id)
        )
        await s.commit()
        if res.rowcount == 1:
            return True
        claimed = await s.scalar(select(Task.callback_event_id).where(Task.id == task.id))
    return claimed == event.id


async def create_delivery(
    db: Database,
    *,
    sub: WebhookSubscription,
    event_id: str,
    event_type: str,
    task_id: str | None,
    payload: str | None,
    redelivery_of: str | None = None,
) -> WebhookDelivery:
    """A new delivery row for the API's redeliver and test routes."""
    row = WebhookDelivery(
        id=new_id("dlv"),
        subscription_id=sub.id,
        user_id=sub.user_id,
        task_id=task_id,
        event_id=event_id,
        event_type=event_type,
        url=sub.url,
        status=DELIVERY_PENDING,
        next_attempt_at=utcnow(),
        payload=payload,
        redelivery_of=redelivery_of,
    )
    async with db.session() as s:
        s.add(row)
        await s.commit()
        await s.refresh(row)
    return row

