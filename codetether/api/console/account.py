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
    usage = await account_usage(get_state(request).db, user.id, user.tier)
    return page(request, "account.html", {"usage": usage}, user=user)
