"""What every console page shares: the Jinja2 environment, the signed-in user, CSRF tokens,
sanitised Markdown, and the response headers of an HTML page.

Sessions are server-side rows (``codetether/accounts/websessions.py``); the ``ct_console`` cookie holds the
token: HttpOnly, SameSite=Lax, Secure whenever the console is served over https. CSRF tokens are
itsdangerous signatures keyed by that session token (or, before sign-in, by a random
``ct_console_pre`` cookie), so a page on another site can neither read nor forge one; every POST
checks it.

A console session is a first-party credential: the signed-in user acting on their own account,
so console pages call the account services (API keys, OAuth grants) directly, with every scope.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeTimedSerializer

from codetether.api.edge.answer_form import fields_html
from codetether.api.edge.markdown import render_markdown
from codetether.api.edge.pages import page_headers
from codetether.api.state import AppState
from codetether.core.errors import ServiceError
from codetether.core.ids import as_utc
from codetether.core.logging import redact_paths
from codetether.core.models import User
from codetether.accounts.websessions import session_user

log = logging.getLogger("codetether.console")

HERE = Path(__file__).parent
SESSION_COOKIE = "ct_console"
PRE_COOKIE = "ct_console_pre"
PRE_TTL_SECONDS = 3600
PREFIX = "/console"

templates = Jinja2Templates(directory=str(HERE / "templates"))

# The console's own scripts and styles load from this origin; nothing else does.
PAGE_HEADERS = page_headers(
    csp=(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    referrer="same-origin",
    pragma=False,
)

def fmt_time(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value.replace("T", " ")[:19] + " UTC"
    return as_utc(value).strftime("%Y-%m-%d %H:%M:%S UTC")


templates.env.filters["when"] = fmt_time
templates.env.filters["markdown"] = render_markdown
templates.env.filters["answer_fields"] = fields_html


def get_state(request: Request) -> AppState:
    return request.app.state.codetether


def secure_cookies(request: Request) -> bool:
    base = get_state(request).settings.public_url or str(request.base_url)
    return base.startswith("https://")


def set_cookie(response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path=PREFIX, httponly=True, samesite="lax",
                        secure=secure_cookies(request))


def _serializer(key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(key, salt="codetether-console-csrf")


def csrf_key(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE) or request.cookies.get(PRE_COOKIE)


def csrf_token(request: Request) -> str:
    key = getattr(request.state, "csrf_key", None) or csrf_key(request)
    if not key:
        key = request.state.new_pre_cookie = secrets.token_urlsafe(24)
    return _serializer(key).dumps("csrf")


def check_csrf(request: Request, form) -> None:
    key = csrf_key(request)
    token = form.get("csrf_token") if form is not None else None
    max_age = int(get_state(request).settings.console_session_hours * 3600)
    try:
        if not key or not isinstance(token, str) or _serializer(key).loads(token, max_age=max_age) != "csrf":
            raise BadSignature("mismatch")
    except BadSignature:
        raise ServiceError(403, "csrf_failed",
                           "This form has expired or was not sent from this site. Reload the page and try again.") from None


def page(request: Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200,
         user: User | None = None) -> HTMLResponse:
    ctx = {"request": request, "user": user, "csrf_token": csrf_token(request), "nav": template.split(".")[0]}
    ctx.update(context or {})
    response = templates.TemplateResponse(request, template, ctx, status_code=status, headers=PAGE_HEADERS)
    new_pre = getattr(request.state, "new_pre_cookie", None)
    if new_pre:
        set_cookie(response, request, PRE_COOKIE, new_pre, PRE_TTL_SECONDS)
    return response


def fragment(request: Request, template: str, context: dict[str, Any]) -> HTMLResponse:
    ctx = {"request": request, "csrf_token": csrf_token(request)}
    ctx.update(context)
    return templates.TemplateResponse(request, template, ctx, headers=PAGE_HEADERS)


async def console_user(request: Request) -> User:
    """The signed-in user; a browser without a session is sent to the sign-in page."""
    state = get_state(request)
    user = await session_user(state.db, request.cookies.get(SESSION_COOKIE))
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise ServiceError(303, "signin_required", "sign in first",
                           headers={"Location": f"{PREFIX}/login?next={quote(target, safe='')}"})
    return user


ConsoleUser = Annotated[User, Depends(console_user)]


def safe_next(value: str | None) -> str:
    # Only a path inside the console: never an open redirect.
    if value and value.startswith(PREFIX + "/") and not value.startswith("//") and "\\" not in value:
        return value
    return f"{PREFIX}/tasks"


async def render_error(request: Request, err: ServiceError) -> HTMLResponse:
    if err.status in (301, 302, 303, 307):
        return HTMLResponse("", status_code=err.status, headers={**PAGE_HEADERS, **err.headers})
    state = get_state(request)
    user = await session_user(state.db, request.cookies.get(SESSION_COOKIE))
    log.info("console refused %s %s: %s", request.method, redact_paths(request.url.path), err.code)
    response = page(request, "error.html", {"error": err}, status=err.status, user=user)
    response.headers.update(err.headers)
    return response
