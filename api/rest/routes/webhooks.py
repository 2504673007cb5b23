"""``/v1/webhooks``: the caller's webhook subscriptions, their delivery log, redelivery and test
pings (scope ``webhooks:manage``). Subscriptions of other users are 404.

Deliveries themselves are Temporal workflows (``workflows/delivery.py``) started by the worker's
event sink; redeliver and test start one from here.
"""

from __future__ import annotations

from typing import Annotated

from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import delete, select

from api.deps import SettingsDep, State, TemporalClient, WebhooksManage
from api.errors import Problem, problem_responses
from api.idempotency import shown_once
from api.rest.schemas.webhooks import (
    AttemptPublic,
    DeliveryList,
    DeliveryPublic,
    HeaderToken,
    HeaderTokenPublic,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookPublic,
    WebhookUpdate,
)
from core import jsoncompact
from core.ids import iso, new_id, parse_iso, utcnow
from core.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from core.netguard import UnsafeURL, validate_webhook_url
from core.signing import generate_secret, mask_secret
from core.webhooks import PING_EVENT, ROTATION_GRACE, create_delivery, start_delivery
from workflows.types import EVENT_TYPES

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

# Headers every delivery carries (or that HTTP itself owns): a header token may not replace them.
RESERVED_HEADERS = frozenset({
    "host", "content-type", "content-length", "transfer-encoding", "connection", "user-agent",
    "x-codetether-event", "x-codetether-delivery", "x-codetether-timestamp", "x-codetether-signature",
})


def _public(sub: WebhookSubscription, *, reveal: bool = False) -> WebhookPublic:
    now = utcnow()
    expiries = [
        e for e in (parse_iso(p.get("expires_at")) for p in sub.previous_secrets or []) if e is not None and e > now
    ]
    return WebhookPublic(
        id=sub.id,
        url=sub.url,
        events=list(sub.events or []),
        description=sub.description,
        status=sub.status,  # type: ignore[arg-type]
        disabled_reason=sub.disabled_reason,
        secret=sub.secret if reveal else mask_secret(sub.secret),
        previous_secret_expires_at=iso(max(expiries)) if expiries else None,
        header_token=(
            HeaderTokenPublic(name=sub.header_token_name, value=mask_secret(sub.header_token_value))
            if sub.header_token_name and sub.header_token_value
            else None
        ),
        created_at=iso(sub.created_at) or "",
        updated_at=iso(sub.updated_at) or "",
    )


def _check_events(events: list[str]) -> list[str]:
    unknown = [e for e in events if e != "*" and e not in EVENT_TYPES]
    if unknown:
        raise Problem(
            422,
            "invalid_event_type",
            f"unknown event type(s): {', '.join(unknown)}; use {', '.join(EVENT_TYPES)} or *",
            errors=[{"field": "events", "message": f"unknown event type {e!r}", "type": "invalid_event_type"} for e in unknown],
        )
    if "*" in events:
        return ["*"]
    return list(dict.fromkeys(events))


def _check_header_token(token: HeaderToken) -> tuple[str, str]:
    name = token.name.lower()
    if name in RESERVED_HEADERS or name.startswith("webhook-"):
        raise Problem(
            422,
            "invalid_header_token",
            f"header_token.name {token.name!r} is a header CodeTether sets itself; choose another name",
            errors=[{"field": "header_token.name", "message": "reserved header name", "type": "invalid_header_token"}],
        )
    return token.name, token.value


async def _check_url(url: str, allow_private: bool) -> None:
    try:
        await validate_webhook_url(url, allow_private=allow_private)
    except UnsafeURL as err:
        raise Problem(
            422,
            "invalid_webhook_url",
            str(err),
            errors=[{"field": "url", "message": str(err), "type": "invalid_webhook_url"}],
        ) from None


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower().rstrip(".")


async def _check_caps(state, settings, user_id: str, url: str, *, replacing: str | None = None) -> None:
    """Caps a user's subscriptions, in all and toward one destination host (each event fans out
    to every matching subscription, up to the retry schedule's attempts each)."""
    host = _host(url)
    async with state.db.session() as s:
        rows = (
            await s.execute(select(WebhookSubscription.id, WebhookSubscription.url).where(WebhookSubscription.user_id == user_id))
        ).all()
    others = [u for i, u in rows if i != replacing]
    if replacing is None and len(others) >= settings.webhook_max_subscriptions_per_user:
        limit = settings.webhook_max_subscriptions_per_user
        raise Problem(
            422,
            "webhook_limit_reached",
            f"you have {len(others)} webhook subscriptions, the most allowed is {limit}; delete one first",
            errors=[{"field": "url", "message": f"at most {limit} subscriptions per user", "type": "webhook_limit_reached"}],
        )
    same_host = sum(1 for u in others if _host(u) == host)
    if same_host >= settings.webhook_max_subscriptions_per_host:
        limit = settings.webhook_max_subscriptions_per_host
        raise Problem(
            422,
            "webhook_host_limit_reached",
            f"you have {same_host} webhook subscriptions to {host}, the most allowed per destination host is {limit}",
            errors=[{"field": "url", "message": f"at most {limit} subscriptions per destination host",
                     "type": "webhook_host_limit_reached"}],
        )


async def _load(state, webhook_id: str, user_id: str) -> WebhookSubscription:
    async with state.db.session() as s:
        sub = await s.get(WebhookSubscription, webhook_id)
    if sub is None or sub.user_id != user_id:
        raise Problem(404, "webhook_not_found", f"no webhook {webhook_id!r}")
    return sub


@router.post(
    "",
    operation_id="createWebhook",
    status_code=201,
    response_model=WebhookCreated,
    summary="Subscribe a URL to events",
    responses=problem_responses(401, 403, 422, 429),
)
async def create_webhook(
    body: WebhookCreate, request: Request, response: Response, principal: WebhooksManage, state: State,
    settings: SettingsDep,
) -> WebhookCreated:
    events = _check_events(body.events)
    token = _check_header_token(body.header_token) if body.header_token is not None else (None, None)
    await _check_url(body.url, settings.webhook_allow_private)
    await _check_caps(state, settings, principal.user_id, body.url)
    now = utcnow()
    sub = WebhookSubscription(
        id=new_id("whk"),
        user_id=principal.user_id,
        url=body.url,
        events=events,
        secret=body.secret or generate_secret(),
        previous_secrets=[],
        description=body.description,
        header_token_name=token[0],
        header_token_value=token[1],
        status="active",
        created_at=now,
        updated_at=now,
    )
    async with state.db.session() as s:
        s.add(sub)
        await s.commit()
    response.headers["Location"] = f"/v1/webhooks/{sub.id}"
    shown_once(request, response, {"secret": mask_secret(sub.secret)})
    return WebhookCreated(**_public(sub, reveal=True).model_dump())


@router.get(
    "",
    operation_id="listWebhooks",
    response_model=WebhookList,
    summary="List your webhook subscriptions",
    responses=problem_responses(401, 403, 429),
)
async def list_webhooks(principal: WebhooksManage, state: State) -> WebhookList:
    async with state.db.session() as s:
        rows = await s.execute(
            select(WebhookSubscription)
            .where(WebhookSubscription.user_id == principal.user_id)
            .order_by(WebhookSubscription.id.desc())
        )
        return WebhookList(data=[_public(r) for r in rows.scalars()])


@router.get(
    "/{webhook_id}",
    operation_id="getWebhook",
    response_model=WebhookPublic,
    summary="Get a webhook subscription (secret masked)",
    responses=problem_responses(401, 403, 404, 429),
)
async def get_webhook(webhook_id: str, principal: WebhooksManage, state: State) -> WebhookPublic:
    return _public(await _load(state, webhook_id, principal.user_id))


@router.patch(
    "/{webhook_id}",
    operation_id="updateWebhook",
    response_model=WebhookPublic,
    summary="Change url, events, status, description or header token; rotate the secret",
    responses=problem_responses(401, 403, 404, 422, 429),
)
async def update_webhook(
    webhook_id: str, body: WebhookUpdate, response: Response, principal: WebhooksManage, state: State,
    settings: SettingsDep,
) -> WebhookPublic:
    await _load(state, webhook_id, principal.user_id)
    events = _check_events(body.events) if body.events is not None else None
    token = _check_header_token(body.header_token) if body.header_token is not None else (None, None)
    if body.url is not None:
        await _check_url(body.url, settings.webhook_allow_private)
        await _check_caps(state, settings, principal.user_id, body.url, replacing=webhook_id)
    rotated = False
    async with state.db.session() as s:
        sub = await s.get(WebhookSubscription, webhook_id)
        if sub is None or sub.user_id != principal.user_id:
            raise Problem(404, "webhook_not_found", f"no webhook {webhook_id!r}")
        now = utcnow()
        if body.url is not None:
            sub.url = body.url
        if events is not None:
            sub.events = events
        if body.description is not None:
            sub.description = body.description
        if "header_token" in body.model_fields_set:
            # Given: set or replace it; null: remove it.
            sub.header_token_name, sub.header_token_value = token
        if body.status is not None and body.status != sub.status:
            sub.status = body.status
            sub.disabled_reason = None if body.status == "active" else "disabled by the owner"
            sub.failing_since = None
        if body.secret is not None or body.rotate_secret:
            new_secret = body.secret or generate_secret()
            if new_secret != sub.secret:
                keep = [
                    p for p in sub.previous_secrets or [] if (parse_iso(p.get("expires_at")) or now) > now
                ]
                keep.insert(0, {"secret": sub.secret, "expires_at": iso(now + ROTATION_GRACE)})
                sub.previous_secrets = keep
                sub.secret = new_secret
                rotated = True
        sub.updated_at = now
        await s.commit()
        await s.refresh(sub)
    if rotated:
        response.headers["Cache-Control"] = "no-store"
    return _public(sub, reveal=rotated)


@router.delete(
    "/{webhook_id}",
    operation_id="deleteWebhook",
    status_code=204,
    summary="Unsubscribe (Zapier REST hooks' unsubscribe)",
    responses=problem_responses(401, 403, 404, 429),
)
async def delete_webhook(webhook_id: str, principal: WebhooksManage, state: State) -> Response:
    await _load(state, webhook_id, principal.user_id)
    async with state.db.session() as s:
        dlv_ids = select(WebhookDelivery.id).where(WebhookDelivery.subscription_id == webhook_id)
        await s.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(dlv_ids)))
        await s.execute(delete(WebhookDelivery).where(WebhookDelivery.subscription_id == webhook_id))
        await s.execute(delete(WebhookSubscription).where(WebhookSubscription.id == webhook_id))
        await s.commit()
    # Deliveries still waiting to retry find the subscription gone and stop.
    return Response(status_code=204)


def _delivery_public(d: WebhookDelivery, attempts: list[WebhookAttempt]) -> DeliveryPublic:
    return DeliveryPublic(
        id=d.id,
        event_id=d.event_id,
        event_type=d.event_type,
        task_id=d.task_id,
        url=d.url,
        status=d.status,  # type: ignore[arg-type]
        attempt_count=d.attempt_count or 0,
        last_status_code=d.last_status_code,
        last_error=d.last_error,
        next_attempt_at=iso(d.next_attempt_at) if d.status == "pending" else None,
        redelivery_of=d.redelivery_of,
        created_at=iso(d.created_at) or "",
        attempts=[
            AttemptPublic(
                delivery_id=d.id,
                event_id=d.event_id,
                attempt=a.attempt,
                status_code=a.status_code,
                duration_ms=a.duration_ms,
                error=a.error,
                response_body=a.response_body,
                next_attempt_at=iso(a.next_attempt_at),
                created_at=iso(a.created_at) or "",
            )
            for a in attempts
        ],
    )


@router.get(
    "/{webhook_id}/deliveries",
    operation_id="listWebhookDeliveries",
    response_model=DeliveryList,
    summary="The delivery log: each delivery with every attempt, newest first",
    responses=problem_responses(401, 403, 404, 422, 429),
)
async def list_deliveries(
    webhook_id: str,
    principal: WebhooksManage,
    state: State,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=40, description="next_cursor of the previous page")] = None,
    event_id: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[str | None, Query(description="Comma list of pending, delivered, failed, cancelled")] = None,
) -> DeliveryList:
    await _load(state, webhook_id, principal.user_id)
    q = select(WebhookDelivery).where(WebhookDelivery.subscription_id == webhook_id)
    if cursor:
        q = q.where(WebhookDelivery.id < cursor)
    if event_id:
        q = q.where(WebhookDelivery.event_id == event_id)
    if status:
        q = q.where(WebhookDelivery.status.in_([p.strip() for p in status.split(",") if p.strip()]))
    q = q.order_by(WebhookDelivery.id.desc()).limit(limit + 1)
    async with state.db.session() as s:
        rows = list((await s.execute(q)).scalars())
        more = len(rows) > limit
        rows = rows[:limit]
        attempts: dict[str, list[WebhookAttempt]] = {r.id: [] for r in rows}
        if rows:
            res = await s.execute(
                select(WebhookAttempt)
                .where(WebhookAttempt.delivery_id.in_(list(attempts)))
                .order_by(WebhookAttempt.attempt)
            )
            for a in res.scalars():
                attempts[a.delivery_id].append(a)
    return DeliveryList(
        data=[_delivery_public(r, attempts[r.id]) for r in rows],
        next_cursor=rows[-1].id if more and rows else None,
    )


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    operation_id="redeliverWebhookDelivery",
    status_code=202,
    response_model=DeliveryPublic,
    summary="Send a delivery's event again (same webhook-id)",
    responses=problem_responses(401, 403, 404, 409, 429, 503),
)
async def redeliver(
    webhook_id: str,
    delivery_id: str,
    principal: WebhooksManage,
    state: State,
    settings: SettingsDep,
    client: TemporalClient,
) -> DeliveryPublic:
    sub = await _load(state, webhook_id, principal.user_id)
    async with state.db.session() as s:
        original = await s.get(WebhookDelivery, delivery_id)
    if original is None or original.subscription_id != sub.id:
        raise Problem(404, "delivery_not_found", f"no delivery {delivery_id!r} of webhook {webhook_id!r}")
    if sub.status != "active":
        raise Problem(409, "webhook_disabled", "the webhook is disabled; PATCH its status to active first")
    row = await create_delivery(
        state.db,
        sub=sub,
        event_id=original.event_id,
        event_type=original.event_type,
        task_id=original.task_id,
        payload=original.payload,
        redelivery_of=original.id,
    )
    await start_delivery(client, settings, row.id)
    return _delivery_public(row, [])


@router.post(
    "/{webhook_id}/test",
    operation_id="testWebhook",
    status_code=202,
    response_model=DeliveryPublic,
    summary="Send a ping event now",
    responses=problem_responses(401, 403, 404, 409, 429, 503),
)
async def test_webhook(
    webhook_id: str, principal: WebhooksManage, state: State, settings: SettingsDep, client: TemporalClient
) -> DeliveryPublic:
    sub = await _load(state, webhook_id, principal.user_id)
    if sub.status != "active":
        raise Problem(409, "webhook_disabled", "the webhook is disabled; PATCH its status to active first")
    event_id = new_id("evt")
    now = iso(utcnow())
    payload = jsoncompact.dumps(
        {
            "id": event_id,
            "event": PING_EVENT,
            "created_at": now,
            "timestamp": now,
            "data": {"webhook_id": sub.id, "url": sub.url, "events": list(sub.events or [])},
        }
    )
    row = await create_delivery(
        state.db, sub=sub, event_id=event_id, event_type=PING_EVENT, task_id=None, payload=payload
    )
    await start_delivery(client, settings, row.id)
    return _delivery_public(row, [])

