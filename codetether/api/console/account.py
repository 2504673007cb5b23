"""Console account pages: API keys (``/console/keys``: create with scopes and a name, the key
shown once; revoke), connected apps (``/console/apps``: the OAuth grants the user gave; revoking
one revokes all its tokens) and the account (``/console/account``: tier, limits, this month).

A console session is a first-party credential (see ``codetether/api/console/web.py``): these pages call the
account services in ``core/`` directly, as ``/v1/api-keys`` does for an API key that may manage
the account.
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
from codetether.accounts.service import create_api_key, list_api_keys, revoke_api_key
from codetether.core.errors import ServiceError, not_found
from codetether.accounts.grants import list_grants, revoke_grant
from codetether.accounts.credentials import ALL_SCOPES, SCOPES, parse_scopes
from codetether.accounts.usage import account_usage
from codetether.api.rest.routes.budget import publish_budget_alerts
from codetether.budgets import service as budgets
from codetether.core.ids import parse_iso

router = APIRouter(prefix=PREFIX, include_in_schema=False)


async def _keys_page(request: Request, user, *, created=None, secret: str | None = None,
                     error: ServiceError | None = None, status: int = 200) -> Response:
    keys = await list_api_keys(get_state(request).db, user.id)
    return page(request, "keys.html", {"keys": keys, "scopes": {s: SCOPES[s] for s in ALL_SCOPES}, "created": created, "secret": secret,
                                       "error": error}, status=status, user=user)


@router.get("/keys", operation_id="consoleApiKeys")
async def keys_page(request: Request, user: ConsoleUser) -> Response:
    return await _keys_page(request, user)


@router.post("/keys", operation_id="consoleCreateApiKey")
async def create_key(request: Request, user: ConsoleUser) -> Response:
    form = await request.form()
    check_csrf(request, form)
    name = str(form.get("name") or "").strip() or "default"
    try:
        if len(name) > 200:
            raise ServiceError(422, "validation_error", "The name can have at most 200 characters.", field="name")
        chosen = [s for s in form.getlist("scopes") if isinstance(s, str)]
        if not chosen:
            raise ServiceError(422, "invalid_scope", "Choose at least one scope.", field="scopes")
        try:
            scopes = parse_scopes(chosen)
        except ValueError as err:
            raise ServiceError(422, "invalid_scope", str(err), field="scopes") from None
    except ServiceError as err:
        return await _keys_page(request, user, error=err, status=err.status)
    row, secret = await create_api_key(get_state(request).db, user.id, name=name, scopes=scopes)
    log.info("console: %s created API key %s", user.id, row.id)
    # Rendered in the answer to the POST (not stored anywhere): the key is shown exactly once.
    return await _keys_page(request, user, created=row, secret=secret, status=201)


@router.post("/keys/{key_id}/revoke", operation_id="consoleRevokeApiKey")
async def revoke_key(request: Request, key_id: str, user: ConsoleUser) -> Response:
    check_csrf(request, await request.form())
    if not await revoke_api_key(get_state(request).db, user.id, key_id):
        raise not_found("api_key", key_id)
    log.info("console: %s revoked API key %s", user.id, key_id)
    return RedirectResponse(f"{PREFIX}/keys", status_code=303, headers=PAGE_HEADERS)


@router.get("/apps", operation_id="consoleConnectedApps")
async def apps_page(request: Request, user: ConsoleUser) -> Response:
    grants = await list_grants(get_state(request).db, user.id)
    return page(request, "apps.html", {"grants": grants, "scope_names": SCOPES}, user=user)


@router.post("/apps/{client_id}/revoke", operation_id="consoleRevokeApp")
async def revoke_app(request: Request, client_id: str, user: ConsoleUser) -> Response:
    check_csrf(request, await request.form())
    count = await revoke_grant(get_state(request).db, user.id, client_id)
    log.info("console: %s revoked the grant of %s (%d tokens)", user.id, client_id, count)
    return RedirectResponse(f"{PREFIX}/apps", status_code=303, headers=PAGE_HEADERS)


@router.get("/account", operation_id="consoleAccount")
async def account_page(request: Request, user: ConsoleUser) -> Response:
    return await _account_page(request, user)


async def _account_page(request: Request, user, *, error: ServiceError | None = None, status: int = 200) -> Response:
    state = get_state(request)
    usage = await account_usage(state.db, user.id, user.tier)
    budget = await budgets.budget_view(state.db, state.settings, user.id)
    start = parse_iso(budget["period_start"])
    days = await budgets.usage(state.db, user.id, "day", start, None)
    return page(request, "account.html", {"usage": usage, "budget": budget, "chart": spend_chart(days), "error": error},
                user=user, status=status)


@router.post("/account/budget", operation_id="consoleSetBudget")
async def set_budget(request: Request, user: ConsoleUser) -> Response:
    """The monthly budget form: the same rule as ``PUT /v1/automation/budget``."""
    form = await request.form()
    check_csrf(request, form)
    raw = str(form.get("limit_usd") or "").strip()
    on_exhaust = str(form.get("on_exhaust") or "ask")
    state = get_state(request)
    try:
        try:
            limit = float(raw) if raw else None
        except ValueError:
            raise ServiceError(422, "validation_error", "The limit must be a number of dollars.", field="limit_usd") from None
        if limit is not None and not (0 < limit <= 1_000_000):
            raise ServiceError(422, "validation_error", "The limit must be above 0 and at most 1,000,000.", field="limit_usd")
        await budgets.set_budget(state.db, state.settings, user.id, limit, on_exhaust)
    except ServiceError as err:
        return await _account_page(request, user, error=err, status=err.status)
    await publish_budget_alerts(state, user.id)
    log.info("console: %s set the monthly budget to %s (%s)", user.id, limit, on_exhaust)
    return RedirectResponse(f"{PREFIX}/account", status_code=303, headers=PAGE_HEADERS)


def spend_chart(days: list[dict]) -> dict:
    """Bars of the month's spend per day for an inline SVG (no script: the page's CSP allows none)."""
    top = max((d["cost_usd"] for d in days), default=0.0) or 1.0
    width = 24
    bars = [{"x": i * width, "h": round(100 * d["cost_usd"] / top, 1), "day": d["key"], "cost": d["cost_usd"]}
            for i, d in enumerate(days)]
    return {"bars": bars, "width": max(len(bars), 1) * width, "top": top}
