"""Console webhook pages: ``/console/webhooks`` (list, create; the secret shown once) and
``/console/webhooks/{id}`` (edit, disable/enable, rotate the secret, set, change or remove the
header token, send a test, delete, and the delivery log with every attempt and a Redeliver
button). The rules are :mod:`codetether.webhooks.subscriptions`, shared with ``/v1/webhooks``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from codetether.api.console.web import (
    PAGE_HEADERS,
    PREFIX,
    ConsoleUser,
    check_csrf,
    get_state,
    log,
    page,
)
from codetether.webhooks import subscriptions as hooks
from codetether.core.errors import ServiceError
from codetether.webhooks.signing import mask_secret
from codetether.webhooks.contracts import SUBSCRIBABLE_EVENT_TYPES

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _events(form) -> list[str]:
    return [e for e in form.getlist("events") if isinstance(e, str)]


def _header_token(form) -> tuple[str, str] | None:
    """The form's header token, or None when no value was typed (a name alone sets nothing)."""
    value = str(form.get("header_token_value") or "")
    if not value:
        return None
    return str(form.get("header_token_name") or "").strip() or hooks.DEFAULT_HEADER_TOKEN_NAME, value


async def _list_page(request: Request, user, *, values=None, error: ServiceError | None = None) -> Response:
    subs = await hooks.list_subscriptions(get_state(request).db, user.id)
    return page(request, "webhooks.html", {
        "subs": subs, "event_types": SUBSCRIBABLE_EVENT_TYPES, "values": values or {"events": ["*"]}, "error": error,
        "mask": mask_secret, "default_token_name": hooks.DEFAULT_HEADER_TOKEN_NAME,
    }, status=error.status if error else 200, user=user)


@router.get("/webhooks", operation_id="consoleWebhooks")
async def webhooks_page(request: Request, user: ConsoleUser) -> Response:
    return await _list_page(request, user)


@router.post("/webhooks", operation_id="consoleCreateWebhook")
async def create(request: Request, user: ConsoleUser) -> Response:
    form = await request.form()
    check_csrf(request, form)
    state = get_state(request)
    values = {"url": str(form.get("url") or "").strip(), "description": str(form.get("description") or "").strip(),
              "events": _events(form), "header_token_name": str(form.get("header_token_name") or "").strip()}
    try:
        if not values["url"]:
            raise ServiceError(422, "validation_error", "Enter the URL that receives the events.", field="url")
        sub = await hooks.create_subscription(state.db, state.settings, user.id, url=values["url"],
                                              events=values["events"], description=values["description"] or None,
                                              header_token=_header_token(form))
    except ServiceError as err:
        return await _list_page(request, user, values=values, error=err)
    log.info("console: %s created webhook %s", user.id, sub.id)
    return await _detail_page(request, user, sub.id, secret=hooks.plain_secret(state.settings, sub), status=201)


async def _detail_page(request: Request, user, webhook_id: str, *, secret: str | None = None,
                       error: ServiceError | None = None, status: int = 200) -> Response:
    state = get_state(request)
    sub = await hooks.get_subscription(state.db, webhook_id, user.id)
    deliveries = await hooks.list_deliveries(state.db, webhook_id, user.id, limit=50)
    return page(request, "webhook.html", {
        "sub": sub, "secret": secret, "masked": mask_secret(hooks.plain_secret(state.settings, sub)),
        "event_types": SUBSCRIBABLE_EVENT_TYPES, "default_token_name": hooks.DEFAULT_HEADER_TOKEN_NAME,
        "masked_token": mask_secret(sub.header_token_value) if sub.header_token_value else None,
        "deliveries": deliveries.deliveries, "error": error, "notice": request.query_params.get("notice"),
    }, status=error.status if error else status, user=user)


@router.get("/webhooks/{webhook_id}", operation_id="consoleWebhook")
async def webhook_page(request: Request, webhook_id: str, user: ConsoleUser) -> Response:
    return await _detail_page(request, user, webhook_id)


def _back(webhook_id: str, notice: str | None = None) -> Response:
    suffix = f"?notice={notice}" if notice else ""
    return RedirectResponse(f"{PREFIX}/webhooks/{webhook_id}{suffix}", status_code=303, headers=PAGE_HEADERS)


@router.post("/webhooks/{webhook_id}", operation_id="consoleUpdateWebhook")
async def update(request: Request, webhook_id: str, user: ConsoleUser) -> Response:
    form = await request.form()
    check_csrf(request, form)
    state = get_state(request)
    try:
        await hooks.update_subscription(state.db, state.settings, webhook_id, user.id,
                                        url=str(form.get("url") or "").strip() or None, events=_events(form),
                                        description=str(form.get("description") or "").strip())
    except ServiceError as err:
        if err.status == 404:
            raise
        return await _detail_page(request, user, webhook_id, error=err)
    return _back(webhook_id, "Saved")


@router.post("/webhooks/{webhook_id}/header-token", operation_id="consoleWebhookHeaderToken")
async def set_header_token(request: Request, webhook_id: str, user: ConsoleUser) -> Response:
    """Sets or replaces the header sent on every delivery (``action=remove`` removes it): the same
    ``update_subscription(header_token=...)`` as ``PATCH /v1/webhooks/{id}``."""
    form = await request.form()
    check_csrf(request, form)
    state = get_state(request)
    remove = form.get("action") == "remove"
    try:
        token = None if remove else _header_token(form)
        if token is None and not remove:
            raise ServiceError(422, "invalid_header_token", "Enter the token's value (16 to 500 characters).",
                               field="header_token.value")
        await hooks.update_subscription(state.db, state.settings, webhook_id, user.id, header_token=token)
    except ServiceError as err:
        if err.status == 404:
            raise
        return await _detail_page(request, user, webhook_id, error=err)
    log.info("console: %s %s the header token of webhook %s", user.id, "removed" if remove else "set", webhook_id)
    return _back(webhook_id, "Header token removed" if remove else "Header token saved")


@router.post("/webhooks/{webhook_id}/status", operation_id="consoleWebhookStatus")
async def set_status(request: Request, webhook_id: str, user: ConsoleUser) -> Response:
    form = await request.form()
    check_csrf(request, form)
    status = "disabled" if form.get("status") == "disabled" else "active"
    state = get_state(request)
    await hooks.update_subscription(state.db, state.settings, webhook_id, user.id, status=status)
    log.info("console: %s set webhook %s %s", user.id, webhook_id, status)
    return _back(webhook_id, "Disabled" if status == "disabled" else "Enabled")


@router.post("/webhooks/{webhook_id}/rotate", operation_id="consoleRotateWebhookSecret")
async def rotate(request: Request, webhook_id: str, user: ConsoleUser) -> Response:
    check_csrf(request, await request.form())
    state = get_state(request)
    sub, _rotated = await hooks.update_subscription(state.db, state.settings, webhook_id, user.id, rotate_secret=True)
    log.info("console: %s rotated the secret of webhook %s", user.id, webhook_id)
    return await _detail_page(request, user, webhook_id, secret=hooks.plain_secret(state.settings, sub))


@router.post("/webhooks/{webhook_id}/test", operation_id="consoleTestWebhook")
async def send_test(request: Request, webhook_id: str, user: ConsoleUser) -> Response:
    check_csrf(request, await request.form())
    state = get_state(request)
    await hooks.send_test(state.db, await state.temporal(), state.settings, webhook_id, user.id)
    return _back(webhook_id, "Test event sent")


@router.post("/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver", operation_id="consoleRedeliver")
async def redeliver(request: Request, webhook_id: str, delivery_id: str, user: ConsoleUser) -> Response:
    check_csrf(request, await request.form())
    state = get_state(request)
    await hooks.redeliver(state.db, await state.temporal(), state.settings, webhook_id, delivery_id, user.id)
    log.info("console: %s redelivered %s", user.id, delivery_id)
    return _back(webhook_id, "Redelivery started")


@router.post("/webhooks/{webhook_id}/delete", operation_id="consoleDeleteWebhook")
async def delete(request: Request, webhook_id: str, user: ConsoleUser) -> Response:
    check_csrf(request, await request.form())
    await hooks.delete_subscription(get_state(request).db, webhook_id, user.id)
    return RedirectResponse(f"{PREFIX}/webhooks", status_code=303, headers=PAGE_HEADERS)
