"""Events about an account rather than a task: budgets, partners' end users and sponsorships.

They go to the account's webhook subscriptions only (a task's own ``webhook_url``/``callback_url``
never sees them), with the same signing, retries and delivery log as task events. The payload is
stored on the delivery row, since there is no task event to read it from.

Callers (the budget ledger after a settlement, the partner services) publish with a ``key`` that
names the occurrence (e.g. ``"<period start>:80"`` for the 80 % threshold of a month): the event id
is derived from it, so a retried activity or request publishes the same event, and each
subscription gets it once.
"""

from __future__ import annotations

import asyncio
import hashlib

from sqlalchemy import select
from temporalio.client import Client

from codetether.core import jsoncompact
from codetether.core.config import Settings
from codetether.core.db import Database
from codetether.core.ids import iso, new_id, ulid, utcnow
from codetether.core.models import WebhookDelivery, WebhookSubscription
from codetether.webhooks.contracts import ACCOUNT_EVENT_TYPES, DELIVERY_PENDING
from codetether.webhooks.routing import start_delivery, subscription_matches


def account_event_id(user_id: str, event_type: str, key: str) -> str:
    """The same ``evt_`` id for the same occurrence: ULID-shaped, all 128 bits from the digest."""
    digest = hashlib.sha256(f"{user_id}|{event_type}|{key}".encode()).digest()
    return "evt_" + ulid(int.from_bytes(digest[10:16], "big"), digest[:10])


async def publish_account_event(db: Database, client: Client, settings: Settings, *, user_id: str,
                                event_type: str, key: str, data: dict) -> list[str]:
    """One delivery per active subscription of ``user_id`` that wants ``event_type``; starts them.
    Idempotent per (user, type, key). Returns the delivery ids (new and already created)."""
    if event_type not in ACCOUNT_EVENT_TYPES:
        raise ValueError(f"not an account event type: {event_type}")
    event_id = account_event_id(user_id, event_type, key)
    now = iso(utcnow())
    body = jsoncompact.dumps({"id": event_id, "event": event_type, "created_at": now, "timestamp": now,
                              "data": data})
    ids: list[str] = []
    async with db.session() as s:
        subs = [sub for sub in (await s.execute(select(WebhookSubscription).where(
            WebhookSubscription.user_id == user_id, WebhookSubscription.status == "active"))).scalars()
            if subscription_matches(sub, event_type)]
        for sub in subs:
            existing = await s.scalar(select(WebhookDelivery.id).where(
                WebhookDelivery.subscription_id == sub.id, WebhookDelivery.event_id == event_id,
                WebhookDelivery.redelivery_of.is_(None)))
            if existing is not None:
                ids.append(existing)
                continue
            row = WebhookDelivery(id=new_id("dlv"), subscription_id=sub.id, user_id=user_id, task_id=None,
                                  event_id=event_id, event_type=event_type, url=sub.url,
                                  status=DELIVERY_PENDING, next_attempt_at=utcnow(), payload=body)
            s.add(row)
            ids.append(row.id)
        await s.commit()
    await asyncio.gather(*(start_delivery(client, settings, did) for did in ids))
    return ids
