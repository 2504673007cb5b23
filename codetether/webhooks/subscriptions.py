"""Webhook subscriptions as a service: create, change (status, events, secret rotation), delete,
the delivery log with every attempt, redelivery and test pings.

Called by ``/v1/webhooks`` (``codetether/api/rest/routes/webhooks.py``) and the console's Webhooks pages
(``codetether/api/console/webhooks.py``). Subscriptions of other users are 404 (:class:`ServiceError`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from temporalio.client import Client

from codetether.core import jsoncompact
from codetether.core.config import Settings
from codetether.core.db import Database, load_owned, owned_row
from codetether.core.errors import ServiceError, not_found
from codetether.core.ids import iso, new_id, parse_iso, utcnow
from codetether.core.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from codetether.core.netguard import UnsafeURL, canonical_host, validate_webhook_url
from codetether.core.secretbox import SEALED_PREFIX, SecretBoxUnavailable, open_text, seal_text
from codetether.webhooks.signing import generate_secret
from codetether.webhooks.routing import PING_EVENT, ROTATION_GRACE, create_delivery, start_delivery
from codetether.webhooks.contracts import SUBSCRIBABLE_EVENT_TYPES


# Headers every delivery carries (or that HTTP itself owns): a header token may not replace them.
RESERVED_HEADERS = frozenset({
    "host", "content-type", "content-length", "transfer-encoding", "connection", "user-agent",
    "x-codetether-event", "x-codetether-delivery", "x-codetether-timestamp", "x-codetether-signature",
})
_UNCHANGED = object()
DELIVERY_STATUSES = ("pending", "delivered", "failed", "cancelled")
_DELIVERY_ID = re.compile(r"^dlv_[0-9a-z]{26}$")


DEFAULT_HEADER_TOKEN_NAME = "X-CodeTether-Token"
# A header token: an HTTP field name, and printable ASCII without surrounding blanks.
HEADER_TOKEN_NAME_PATTERN = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"
HEADER_TOKEN_NAME_MAX = 100
HEADER_TOKEN_VALUE_PATTERN = r"^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$"
HEADER_TOKEN_VALUE_MIN, HEADER_TOKEN_VALUE_MAX = 16, 500
_TOKEN_NAME = re.compile(HEADER_TOKEN_NAME_PATTERN)
_TOKEN_VALUE = re.compile(HEADER_TOKEN_VALUE_PATTERN)


def check_header_token(token: tuple[str, str] | None) -> tuple[str | None, str | None]:
    """``(name, value)`` of a header token to store, or ``(None, None)`` for none. The same rules
    as ``/v1/webhooks``' schema (``HeaderToken``), for the faces that send no JSON (the console)."""
    if token is None:
        return None, None
    if not 0 < len(token[0]) <= HEADER_TOKEN_NAME_MAX or not _TOKEN_NAME.fullmatch(token[0]):
        raise ServiceError(422, "invalid_header_token",
                           f"header_token.name must be a header name of 1 to {HEADER_TOKEN_NAME_MAX} letters, digits "
                           "or !#$%&'*+.^_`|~-", field="header_token.name")
    if not HEADER_TOKEN_VALUE_MIN <= len(token[1]) <= HEADER_TOKEN_VALUE_MAX or not _TOKEN_VALUE.fullmatch(token[1]):
        raise ServiceError(422, "invalid_header_token",
                           f"header_token.value must be {HEADER_TOKEN_VALUE_MIN} to {HEADER_TOKEN_VALUE_MAX} printable "
                           "ASCII characters, not starting or ending with a space", field="header_token.value")
    name = token[0].lower()
    if name in RESERVED_HEADERS or name.startswith("webhook-"):
        raise ServiceError(422, "invalid_header_token",
                           f"header_token.name {token[0]!r} is a header CodeTether sets itself; choose another name",
                           field="header_token.name")
    return token


def check_secret(secret: str | None) -> None:
    if secret is not None and secret.startswith(SEALED_PREFIX):
        raise ServiceError(422, "invalid_secret", f"a secret may not start with {SEALED_PREFIX!r}", field="secret")


def plain_secret(settings: Settings, sub: WebhookSubscription) -> str:
    """The subscription's signing secret as the receiver knows it (stored sealed when a key is
    configured, see ``codetether/core/secretbox.py``)."""
    try:
        return open_text(settings, sub.secret)
    except SecretBoxUnavailable:
        raise ServiceError(503, "secret_unavailable", "the signing secret was sealed with another key; "
                           "configure the CODETETHER_CODEBASE_KEY it was sealed with, or rotate it") from None


def check_events(events: list[str]) -> list[str]:
    unknown = [e for e in events if e != "*" and e not in SUBSCRIBABLE_EVENT_TYPES]
    if unknown:
        raise ServiceError(422, "invalid_event_type",
                           f"unknown event type(s): {', '.join(unknown)}; use {', '.join(SUBSCRIBABLE_EVENT_TYPES)} or *",
                           field="events")
    if not events:
        raise ServiceError(422, "invalid_event_type", "choose at least one event type", field="events")
    if "*" in events:
        return ["*"]
    return list(dict.fromkeys(events))


async def check_url(url: str, settings: Settings) -> None:
    try:
        await validate_webhook_url(url, allow_private=settings.webhook_allow_private)
    except UnsafeURL as err:
        raise ServiceError(422, "invalid_webhook_url", str(err), field="url") from None


def _host(url: str) -> str:
    return canonical_host(urlsplit(url).hostname or "")


async def check_caps(db: Database, settings: Settings, user_id: str, url: str, *,
                     replacing: str | None = None) -> None:
    """Caps a user's subscriptions, in all and toward one destination host (each event fans out
    to every matching subscription, up to the retry schedule's attempts each)."""
    host = _host(url)
    async with db.session() as s:
        rows = (await s.execute(select(WebhookSubscription.id, WebhookSubscription.url)
                                .where(WebhookSubscription.user_id == user_id))).all()
    others = [u for i, u in rows if i != replacing]
    if replacing is None and len(others) >= settings.webhook_max_subscriptions_per_user:
        limit = settings.webhook_max_subscriptions_per_user
        raise ServiceError(422, "webhook_limit_reached",
                           f"you have {len(others)} webhook subscriptions, the most allowed is {limit}; delete one first",
                           field="url")
    same_host = sum(1 for u in others if _host(u) == host)
    if same_host >= settings.webhook_max_subscriptions_per_host:
        limit = settings.webhook_max_subscriptions_per_host
        raise ServiceError(422, "webhook_host_limit_reached",
                           f"you have {same_host} webhook subscriptions to {host}, the most allowed per destination "
                           f"host is {limit}", field="url")


async def get_subscription(db: Database, webhook_id: str, user_id: str) -> WebhookSubscription:
    return await load_owned(db, WebhookSubscription, webhook_id, lambda w: w.user_id == user_id,
                            not_found("webhook", webhook_id))


async def list_subscriptions(db: Database, user_id: str) -> list[WebhookSubscription]:
    async with db.session() as s:
        rows = await s.execute(
            select(WebhookSubscription).where(WebhookSubscription.user_id == user_id)
            .order_by(WebhookSubscription.id.desc())
        )
        return list(rows.scalars())


async def create_subscription(db: Database, settings: Settings, user_id: str, *, url: str, events: list[str],
                              secret: str | None = None, description: str | None = None,
                              header_token: tuple[str, str] | None = None) -> WebhookSubscription:
    """The new subscription and its signing secret (show it this once; the row holds it sealed)."""
    check_secret(secret)
    events = check_events(events)
    token = check_header_token(header_token)
    await check_url(url, settings)
    await check_caps(db, settings, user_id, url)
    now = utcnow()
    sub = WebhookSubscription(
        id=new_id("whk"), user_id=user_id, url=url, events=events, secret=seal_text(settings, secret or generate_secret()),
        previous_secrets=[], description=description, header_token_name=token[0], header_token_value=token[1],
        status="active", created_at=now, updated_at=now,
    )
    async with db.session() as s:
        s.add(sub)
        await s.commit()
    return sub


async def update_subscription(db: Database, settings: Settings, webhook_id: str, user_id: str, *,
                              url: str | None = None, events: list[str] | None = None, status: str | None = None,
                              description: str | None = None, secret: str | None = None,
                              rotate_secret: bool = False,
                              header_token=_UNCHANGED) -> tuple[WebhookSubscription, bool]:
    """Applies the changes; returns the row and whether the secret was rotated (then show it).
    ``header_token``: left as it is unless given; ``(name, value)`` sets it, ``None`` removes it."""
    await get_subscription(db, webhook_id, user_id)
    check_secret(secret)
    events = check_events(events) if events is not None else None
    token = check_header_token(header_token) if header_token is not _UNCHANGED else None
    if url is not None:
        await check_url(url, settings)
        await check_caps(db, settings, user_id, url, replacing=webhook_id)
    rotated = False
    async with db.session() as s:
        sub = await owned_row(s, WebhookSubscription, webhook_id, lambda w: w.user_id == user_id,
                              not_found("webhook", webhook_id))
        now = utcnow()
        if url is not None:
            sub.url = url
        if events is not None:
            sub.events = events
        if description is not None:
            sub.description = description
        if header_token is not _UNCHANGED:
            sub.header_token_name, sub.header_token_value = token
        if status is not None and status != sub.status:
            sub.status = status
            sub.disabled_reason = None if status == "active" else "disabled by the owner"
            sub.failing_since = None
        if secret is not None or rotate_secret:
            new_secret = secret or generate_secret()
            if new_secret != plain_secret(settings, sub):
                keep = [p for p in sub.previous_secrets or [] if (parse_iso(p.get("expires_at")) or now) > now]
                keep.insert(0, {"secret": seal_text(settings, sub.secret), "expires_at": iso(now + ROTATION_GRACE)})
                sub.previous_secrets = keep
                sub.secret = seal_text(settings, new_secret)
                rotated = True
        sub.updated_at = now
        await s.commit()
        await s.refresh(sub)
    return sub, rotated


async def delete_subscription(db: Database, webhook_id: str, user_id: str) -> None:
    await get_subscription(db, webhook_id, user_id)
    async with db.session() as s:
        dlv_ids = select(WebhookDelivery.id).where(WebhookDelivery.subscription_id == webhook_id)
        await s.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(dlv_ids)))
        await s.execute(delete(WebhookDelivery).where(WebhookDelivery.subscription_id == webhook_id))
        await s.execute(delete(WebhookSubscription).where(WebhookSubscription.id == webhook_id))
        await s.commit()
    # Deliveries still waiting to retry find the subscription gone and stop.


@dataclass
class DeliveryPage:
    deliveries: list[tuple[WebhookDelivery, list[WebhookAttempt]]]
    next_cursor: str | None


async def list_deliveries(db: Database, webhook_id: str, user_id: str, *, limit: int = 20,
                          cursor: str | None = None, event_id: str | None = None,
                          status: str | None = None) -> DeliveryPage:
    """Deliveries of the subscription, newest first, each with every attempt in order."""
    await get_subscription(db, webhook_id, user_id)
    q = select(WebhookDelivery).where(WebhookDelivery.subscription_id == webhook_id)
    if cursor:
        # A cursor is the last delivery id of a page; anything else would silently filter by a
        # string comparison.
        if not _DELIVERY_ID.match(cursor):
            raise ServiceError(422, "invalid_cursor", "cursor must be the next_cursor of a previous page",
                               field="cursor")
        q = q.where(WebhookDelivery.id < cursor)
    if event_id:
        q = q.where(WebhookDelivery.event_id == event_id)
    if status:
        wanted = [p.strip() for p in status.split(",") if p.strip()]
        unknown = [p for p in wanted if p not in DELIVERY_STATUSES]
        if unknown or not wanted:
            raise ServiceError(422, "invalid_status",
                               f"status must be a comma list of {', '.join(DELIVERY_STATUSES)}", field="status")
        q = q.where(WebhookDelivery.status.in_(wanted))
    q = q.order_by(WebhookDelivery.id.desc()).limit(limit + 1)
    async with db.session() as s:
        rows = list((await s.execute(q)).scalars())
        more = len(rows) > limit
        rows = rows[:limit]
        attempts: dict[str, list[WebhookAttempt]] = {r.id: [] for r in rows}
        if rows:
            res = await s.execute(
                select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(list(attempts)))
                .order_by(WebhookAttempt.attempt)
            )
            for a in res.scalars():
                attempts[a.delivery_id].append(a)
    return DeliveryPage([(r, attempts[r.id]) for r in rows], rows[-1].id if more and rows else None)


def _require_active(sub: WebhookSubscription) -> None:
    if sub.status != "active":
        raise ServiceError(409, "webhook_disabled", "the webhook is disabled; enable it (status active) first")


async def redeliver(db: Database, client: Client, settings: Settings, webhook_id: str, delivery_id: str,
                    user_id: str) -> WebhookDelivery:
    """A new delivery of the same event (same webhook-id), started now."""
    sub = await get_subscription(db, webhook_id, user_id)
    original = await load_owned(
        db, WebhookDelivery, delivery_id, lambda d: d.subscription_id == sub.id,
        ServiceError(404, "delivery_not_found", f"no delivery {delivery_id!r} of webhook {webhook_id!r}"),
    )
    _require_active(sub)
    row = await create_delivery(
        db, sub=sub, event_id=original.event_id, event_type=original.event_type, task_id=original.task_id,
        payload=original.payload, redelivery_of=original.id,
    )
    await start_delivery(client, settings, row.id)
    return row


async def send_test(db: Database, client: Client, settings: Settings, webhook_id: str,
                    user_id: str) -> WebhookDelivery:
    """A ``ping`` event delivered to the subscription now."""
    sub = await get_subscription(db, webhook_id, user_id)
    _require_active(sub)
    event_id = new_id("evt")
    now = iso(utcnow())
    payload = jsoncompact.dumps({
        "id": event_id, "event": PING_EVENT, "created_at": now, "timestamp": now,
        "data": {"webhook_id": sub.id, "url": sub.url, "events": list(sub.events or [])},
    })
    row = await create_delivery(db, sub=sub, event_id=event_id, event_type=PING_EVENT, task_id=None, payload=payload)
    await start_delivery(client, settings, row.id)
    return row
