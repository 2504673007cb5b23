"""``/v1/webhooks``: the caller's webhook subscriptions, their delivery log, redelivery and test
pings (scope ``webhooks:manage``). Subscriptions of other users are 404.

Deliveries themselves are Temporal workflows (``codetether/webhooks/workflow.py``) started by the worker's
event sink; redeliver and test start one from here. The rules are in
:mod:`codetether.webhooks.subscriptions`, shared with the console.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from codetether.api.deps import SettingsDep, State, TemporalClient, WebhooksManage
from codetether.api.edge.errors import problem_responses
from codetether.api.edge.idempotency import shown_once
from codetether.api.rest.schemas.webhooks import (
    AttemptPublic,
    DeliveryList,
    DeliveryPublic,
    HeaderTokenPublic,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookPublic,
    WebhookUpdate,
)
from codetether.webhooks import subscriptions as hooks
from codetether.core.config import Settings
from codetether.core.ids import iso, parse_iso, utcnow
from codetether.core.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from codetether.webhooks.signing import mask_secret

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
_STATUS = "(" + "|".join(hooks.DELIVERY_STATUSES) + ")"
# Empty is "no filter" (Zapier and n8n send empty strings for fields left empty).
_STATUS_LIST = rf"^( *{_STATUS} *(, *{_STATUS} *)*)?$"

def _public(sub: WebhookSubscription, settings: Settings, *, reveal: bool = False) -> WebhookPublic:
    now = utcnow()
    secret = hooks.plain_secret(settings, sub)
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
        secret=secret if reveal else mask_secret(secret),
        previous_secret_expires_at=iso(max(expiries)) if expiries else None,
        header_token=(
            HeaderTokenPublic(name=sub.header_token_name, value=mask_secret(sub.header_token_value))
            if sub.header_token_name and sub.header_token_value
            else None
        ),
        created_at=iso(sub.created_at) or "",
        updated_at=iso(sub.updated_at) or "",
    )


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
    sub = await hooks.create_subscription(
        state.db, settings, principal.user_id, url=body.url, events=body.events, secret=body.secret,
        description=body.description,
        header_token=(body.header_token.name, body.header_token.value) if body.header_token is not None else None,
    )
    response.headers["Location"] = f"/v1/webhooks/{sub.id}"
    shown_once(request, response, {"secret": mask_secret(hooks.plain_secret(settings, sub))})
    return WebhookCreated(**_public(sub, settings, reveal=True).model_dump())


@router.get(
    "",
    operation_id="listWebhooks",
    response_model=WebhookList,
    summary="List your webhook subscriptions",
    responses=problem_responses(401, 403, 429),
)
async def list_webhooks(principal: WebhooksManage, state: State, settings: SettingsDep) -> WebhookList:
    return WebhookList(data=[_public(r, settings) for r in await hooks.list_subscriptions(state.db, principal.user_id)])


@router.get(
    "/{webhook_id}",
    operation_id="getWebhook",
    response_model=WebhookPublic,
    summary="Get a webhook subscription (secret masked)",
    responses=problem_responses(401, 403, 404, 429),
)
async def get_webhook(webhook_id: str, principal: WebhooksManage, state: State, settings: SettingsDep) -> WebhookPublic:
    return _public(await hooks.get_subscription(state.db, webhook_id, principal.user_id), settings)


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
    sub, rotated = await hooks.update_subscription(
        state.db, settings, webhook_id, principal.user_id, url=body.url, events=body.events, status=body.status,
        description=body.description, secret=body.secret, rotate_secret=body.rotate_secret,
        **({"header_token": (body.header_token.name, body.header_token.value) if body.header_token else None}
           if "header_token" in body.model_fields_set else {}),
    )
    if rotated:
        response.headers["Cache-Control"] = "no-store"
    return _public(sub, settings, reveal=rotated)


@router.delete(
    "/{webhook_id}",
    operation_id="deleteWebhook",
    status_code=204,
    summary="Unsubscribe (Zapier REST hooks' unsubscribe)",
    responses=problem_responses(401, 403, 404, 429),
)
async def delete_webhook(webhook_id: str, principal: WebhooksManage, state: State) -> Response:
    await hooks.delete_subscription(state.db, webhook_id, principal.user_id)
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
    # The patterns are declared for clients; the service answers 422 invalid_cursor / invalid_status itself.
    cursor: Annotated[str | None, Query(max_length=40, description="next_cursor of the previous page",
                                        json_schema_extra={"pattern": r"^(dlv_[0-9a-z]{26})?$"})] = None,
    event_id: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[str | None, Query(description="Comma list of pending, delivered, failed, cancelled",
                                        json_schema_extra={"pattern": _STATUS_LIST})] = None,
) -> DeliveryList:
    page = await hooks.list_deliveries(
        state.db, webhook_id, principal.user_id, limit=limit, cursor=cursor, event_id=event_id, status=status
    )
    return DeliveryList(data=[_delivery_public(d, a) for d, a in page.deliveries], next_cursor=page.next_cursor)


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
    row = await hooks.redeliver(state.db, client, settings, webhook_id, delivery_id, principal.user_id)
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
    row = await hooks.send_test(state.db, client, settings, webhook_id, principal.user_id)
    return _delivery_public(row, [])


