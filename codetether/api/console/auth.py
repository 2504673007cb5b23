"""Console sign-in and sign-out: ``/console/login`` (email + password, throttled by
``codetether/accounts/signin.py``), ``/console/logout``, one-time sign-in links (``/console/link/{token}``,
printed by ``codetether dev``), open sign-up with email verification
(``CODETETHER_SIGNUP=open``); single sign-on through the OIDC issuer is ``codetether/api/console/oidc.py``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from codetether.api.console.web import (
    PAGE_HEADERS,
    PRE_COOKIE,
    PREFIX,
    SESSION_COOKIE,
    check_csrf,
    get_state,
    log,
    page,
    safe_next,
    set_cookie,
)
from codetether.accounts import websessions
from codetether.api.edge.errors import problem_from
from codetether.api.edge.public_base import public_base
from codetether.core.errors import ServiceError
from codetether.core.models import User
from codetether.accounts.signin import authenticate_password

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def start_session(request: Request, user: User, target: str) -> Response:
    state = get_state(request)
    hours = state.settings.console_session_hours
    token = await websessions.create_session(state.db, user.id, hours=hours, ip=client_ip(request))
    log.info("console sign-in of %s", user.id)
    response = RedirectResponse(safe_next(target), status_code=303, headers=PAGE_HEADERS)
    set_cookie(response, request, SESSION_COOKIE, token, int(hours * 3600))
    response.delete_cookie(PRE_COOKIE, path=PREFIX)
    return response


def _login_page(request: Request, *, error: str | None = None, email: str = "", status: int = 200,
                notice: str | None = None):
    state = get_state(request)
    return page(request, "login.html", {
        "error": error, "email": email, "notice": notice, "next": request.query_params.get("next", ""),
        "signup_open": state.settings.signup == "open",
        "oidc": bool(state.settings.oidc_issuer and state.settings.oidc_client_id),
    }, status=status)


@router.get("", operation_id="consoleHome")
async def home() -> Response:
    return RedirectResponse(f"{PREFIX}/tasks", status_code=303)


@router.get("/login", operation_id="consoleLoginPage")
async def login_page(request: Request) -> Response:
    state = get_state(request)
    if await websessions.session_user(state.db, request.cookies.get(SESSION_COOKIE)) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return _login_page(request)


@router.post("/login", operation_id="consoleLogin")
async def login(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, form)
    state = get_state(request)
    email = str(form.get("email") or "").strip().lower()
    try:
        user = await authenticate_password(state.db, state.settings, email, str(form.get("password") or ""),
                                           client_ip(request))
    except ServiceError as err:
        response = _login_page(request, error=err.message, email=email, status=err.status)
        response.headers.update(err.headers)
        return response
    return await start_session(request, user, str(form.get("next") or ""))


@router.post("/logout", operation_id="consoleLogout")
async def logout(request: Request) -> Response:
    check_csrf(request, await request.form())
    await websessions.end_session(get_state(request).db, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse(f"{PREFIX}/login", status_code=303, headers=PAGE_HEADERS)
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


# One-time links: GET shows a button (link scanners that prefetch must not spend the link), POST uses it.

@router.get("/link/{token}", operation_id="consoleSignInLinkPage")
async def link_page(request: Request, token: str) -> Response:
    return page(request, "confirm_link.html", {"action": f"{PREFIX}/link/{token}", "title": "Sign in to CodeTether",
                                               "text": "This one-time link signs you in to the console.",
                                               "button": "Continue to the console"})


@router.post("/link/{token}", operation_id="consoleSignInLink")
async def use_link(request: Request, token: str) -> Response:
    check_csrf(request, await request.form())
    user = await websessions.redeem_signin_link(get_state(request).db, token)
    if user is None:
        return _login_page(request, status=400, error="This sign-in link has been used or has expired.")
    return await start_session(request, user, f"{PREFIX}/tasks")


def _require_signup(request: Request) -> None:
    if get_state(request).settings.signup != "open":
        raise ServiceError(404, "signup_closed", "Sign-up is closed on this server; ask an administrator for an account.")


@router.get("/signup", operation_id="consoleSignupPage")
async def signup_page(request: Request) -> Response:
    _require_signup(request)
    return page(request, "signup.html", {"email": ""})


@router.post("/signup", operation_id="consoleSignup")
async def signup(request: Request) -> Response:
    _require_signup(request)
    form = await request.form()
    check_csrf(request, form)
    state = get_state(request)
    email = str(form.get("email") or "").strip().lower()
    password = str(form.get("password") or "")
    try:
        if state.settings.smtp_url is None:
            user = await websessions.signup_now(state.db, email, password)
            return await start_session(request, user, f"{PREFIX}/tasks")
        token = await websessions.start_signup(state.db, email, password)
    except ServiceError as err:
        if "text/html" not in request.headers.get("accept", ""):
            # A script posting the form gets the refusal it can parse: problem+json with the code.
            return problem_from(err)
        return page(request, "signup.html", {"email": email, "error": err.message}, status=err.status)
    from codetether.api.console.mail import send_verification

    await send_verification(state.settings, email, f"{_base(request)}{PREFIX}/verify/{token}")
    return page(request, "signup.html", {"sent_to": email})


def _verify_page(request: Request, token: str, *, error: str | None = None, status: int = 200) -> Response:
    return page(request, "confirm_link.html", {"action": f"{PREFIX}/verify/{token}", "title": "Confirm your email",
                                               "text": "Enter the password you signed up with to finish creating "
                                                       "your account.",
                                               "button": "Confirm and sign in", "password": True, "error": error},
                status=status)


@router.get("/verify/{token}", operation_id="consoleVerifyEmailPage")
async def verify_page(request: Request, token: str) -> Response:
    return _verify_page(request, token)


@router.post("/verify/{token}", operation_id="consoleVerifyEmail")
async def verify(request: Request, token: str) -> Response:
    form = await request.form()
    check_csrf(request, form)
    from codetether.api.console.claim import finish_confirmed_claim

    try:
        # A partner's end user claiming its account confirms its address with the same kind of link.
        claimed = await finish_confirmed_claim(request, token, str(form.get("password") or ""))
        if claimed is not None:
            return claimed
        user = await websessions.complete_signup(get_state(request).db, token, str(form.get("password") or ""))
    except ServiceError as err:
        return _verify_page(request, token, error=err.message, status=err.status)
    if user is None:
        return _login_page(request, status=400, error="This confirmation link has been used or has expired.")
    return await start_session(request, user, f"{PREFIX}/tasks")


def _base(request: Request) -> str:
    return public_base(request.scope, get_state(request).settings).url
