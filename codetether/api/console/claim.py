"""The claim page behind a partner's claim link: ``/console/claim/<token>``.

The link is made by ``POST /v1/partner/end_users/{id}/account_links``; the rules are in
``codetether/partners/claims.py``. GET shows the form and spends nothing (a link scanner that
prefetches must not use the link up); a used or expired link never shows it and sends the browser
to the partner's ``refresh_url`` instead. The form (CSRF-protected like every console form) sets
an email and a password, or signs in to an existing account; on success the browser gets a
console session and goes to the partner's ``return_url``. With SMTP configured, setting an
address sends a confirmation link first (``/console/verify/<token>``, finished by
:func:`finish_confirmed_claim`).

The token is a capability: the access log writes the path as ``/console/claim/[redacted]``
(``codetether/core/logging.py``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from codetether.accounts import websessions
from codetether.api.console.web import (
    PAGE_HEADERS,
    PRE_COOKIE,
    PREFIX,
    SESSION_COOKIE,
    check_csrf,
    get_state,
    log,
    page,
    set_cookie,
)
from codetether.api.edge.public_base import public_base
from codetether.core.errors import ServiceError
from codetether.partners import claims
from codetether.partners.events import END_USER_CLAIMED, publish_end_user_event

router = APIRouter(prefix=PREFIX, include_in_schema=False)
CSP = "Content-Security-Policy"


def _unknown_link() -> ServiceError:
    return ServiceError(404, "claim_link_not_found",
                        "This claim link is not valid. Go back to the app that sent you here and try again.")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _headers(link: claims.ClaimLink) -> dict[str, str]:
    # The form's answer is a redirect to the partner's page: form-action must allow its origins.
    origins = " ".join(sorted({_origin(link.link.return_url), _origin(link.link.refresh_url)}))
    return {CSP: PAGE_HEADERS[CSP].replace("form-action 'self'", f"form-action 'self' {origins}")}


def _refresh(link: claims.ClaimLink) -> Response:
    return RedirectResponse(link.link.refresh_url, status_code=303, headers={**PAGE_HEADERS, **_headers(link)})


def _form(request: Request, token: str, link: claims.ClaimLink, *, error: ServiceError | None = None,
          email: str | None = None, signin_email: str = "", sent_to: str | None = None) -> Response:
    status = error.status if error else 200
    response = page(request, "claim.html", {
        "action": f"{PREFIX}/claim/{token}", "partner_name": link.partner.name, "error": error,
        "email": link.end_user.email or "" if email is None else email, "signin_email": signin_email,
        "sent_to": sent_to, "return_url": link.link.return_url,
    }, status=status)
    response.headers.update(_headers(link))
    if error is not None:
        response.headers.update(error.headers)
    return response


async def _signed_in(request: Request, done: claims.Claimed, target: str) -> Response:
    """Tells the partner, signs the browser in and sends it to ``target``."""
    state = get_state(request)
    try:
        await publish_end_user_event(state.db, await state.temporal(), state.settings, done.partner,
                                     END_USER_CLAIMED, done.end_user)
    except Exception:  # noqa: BLE001 - the claim is made; a delivery that cannot start is logged, not shown
        log.exception("end_user.claimed for %s could not be published", done.end_user["end_user_id"])
    hours = state.settings.console_session_hours
    session = await websessions.create_session(state.db, done.user_id, hours=hours,
                                               ip=request.client.host if request.client else None)
    log.info("end user %s claimed by %s", done.end_user["end_user_id"], done.user_id)
    response = RedirectResponse(target, status_code=303, headers=PAGE_HEADERS)
    set_cookie(response, request, SESSION_COOKIE, session, int(hours * 3600))
    response.delete_cookie(PRE_COOKIE, path=PREFIX)
    return response


@router.get("/claim/{token}", operation_id="consoleClaimPage")
async def claim_page(request: Request, token: str) -> Response:
    link = await claims.open_link(get_state(request).db, token)
    if link is None:
        raise _unknown_link()
    if not link.usable():
        return _refresh(link)
    return _form(request, token, link)


@router.post("/claim/{token}", operation_id="consoleClaim")
async def claim(request: Request, token: str) -> Response:
    form = await request.form()
    check_csrf(request, form)
    state = get_state(request)
    link = await claims.open_link(state.db, token)
    if link is None:
        raise _unknown_link()
    if not link.usable():
        return _refresh(link)
    mode = str(form.get("mode") or "")
    email = str(form.get("email") or "").strip()
    password = str(form.get("password") or "")
    try:
        if mode == "signin":
            ip = request.client.host if request.client else None
            done = await claims.claim_into_account(state.db, state.settings, link, email, password, ip)
        elif mode == "create" and state.settings.smtp_url:
            confirm = await claims.start_verified_claim(state.db, link, email, password)
            from codetether.api.console.mail import send_verification

            base = public_base(request.scope, state.settings).url
            await send_verification(state.settings, email, f"{base}{PREFIX}/verify/{confirm}")
            return _form(request, token, link, sent_to=email)
        elif mode == "create":
            done = await claims.claim_new_account(state.db, link, email, password)
        else:
            raise ServiceError(422, "invalid_request", "Choose how to claim the account.")
    except claims.StaleLink:
        return _refresh(link)
    except ServiceError as err:
        if mode == "signin":
            return _form(request, token, link, error=err, signin_email=email)
        return _form(request, token, link, error=err, email=email)
    return await _signed_in(request, done, link.link.return_url)


async def finish_confirmed_claim(request: Request, token: str, password: str) -> Response | None:
    """The confirmation link of a claim made with SMTP configured (``/console/verify/<token>``);
    None if ``token`` is not one."""
    state = get_state(request)
    if not await claims.is_claim_confirmation(state.db, token):
        return None
    done = await claims.complete_verified_claim(state.db, token, password)
    if done is None:
        raise ServiceError(400, "claim_link_used", "This confirmation link has been used or has expired.")
    return await _signed_in(request, done, f"{PREFIX}/tasks")
