"""``GET``/``POST /oauth/authorize``: the authorization endpoint and its browser side.

authlib validates the request (``codetether/api/oauth/server.py``); this router owns what the user
sees: a sign-in form (local users with passwords, CSRF-protected by a double-submit cookie), a
sign-in session cookie, and a consent page listing the requested scopes (CSRF-protected by a token
bound to the session). The request shown on the consent page is stored server-side, so the form
posts only its id. Errors go back to the client only once its redirect URI is verified.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from urllib.parse import urlencode

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.util import scope_to_list
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import delete, select, update

from codetether.accounts.credentials import constant_time_equals, hash_token
from codetether.accounts.signin import authenticate_password
from codetether.api.deps import State
from codetether.api.oauth.authlib_http import StarletteOAuth2Request, to_response
from codetether.api.oauth.pages import consent_page, error_page, signin_page
from codetether.api.oauth.server import authorization_server
from codetether.api.oauth.unit_of_work import load_context, run_endpoint, with_context
from codetether.api.oauth.views import ClientView, UserView
from codetether.core.db import Database
from codetether.core.errors import ServiceError
from codetether.core.ids import as_utc, new_id, utcnow
from codetether.core.models import OAuthAuthorizationCode, OAuthAuthorizationRequest, OAuthSignInSession, User

router = APIRouter(tags=["oauth"])

SESSION_COOKIE = "ct_oauth_session"
CSRF_COOKIE = "ct_oauth_csrf"
SESSION_TTL = timedelta(hours=8)
# How long a consent page may wait for its answer.
AUTHORIZATION_REQUEST_TTL = timedelta(minutes=30)
OAUTH_PARAMS = (
    "response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method",
)


def _oauth_params(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in items if k in OAUTH_PARAMS]


def _first(params: list[tuple[str, str]], name: str) -> str | None:
    for k, v in params:
        if k == name:
            return v
    return None


def _secure_cookies(request: Request, state) -> bool:
    base = state.settings.public_url or str(request.base_url)
    return base.startswith("https://")


def _set_cookie(response: Response, request: Request, state, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/oauth", httponly=True, samesite="lax",
        secure=_secure_cookies(request, state),
    )


async def _session_user(db: Database, request: Request) -> tuple[OAuthSignInSession, User] | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    async with db.session() as s:
        row = (
            await s.execute(
                select(OAuthSignInSession, User)
                .join(User, User.id == OAuthSignInSession.user_id)
                .where(OAuthSignInSession.token_hash == hash_token(token))
            )
        ).first()
    if row is None or as_utc(row[0].expires_at) <= utcnow():
        return None
    return row[0], row[1]


async def _validate_authorize(state, params: list[tuple[str, str]], request: Request):
    """Checks an authorization request with authlib; returns (context, request, grant) or a response.

    An error is sent back to the client's redirect URI only once authlib has matched that URI
    exactly against the client's registration; otherwise the user sees an error page here.
    """
    c = await load_context(state.db, client_ids=[_first(params, "client_id")])
    oreq = StarletteOAuth2Request(request.method, request.headers, params, [])
    try:
        grant = with_context(c, lambda: authorization_server.get_consent_grant(request=oreq, end_user=None))
    except OAuth2Error as err:
        if err.redirect_uri:
            return to_response(*err())
        description = err.description or err.error
        return error_page("This authorization request is not valid", f"{err.error}: {description}")
    return c, oreq, grant


def _signin(request: Request, state, params, client: ClientView, *, error: str | None = None,
            email: str = "", status: int = 200) -> Response:
    csrf = secrets.token_urlsafe(24)
    response = signin_page(params, client.name, csrf, error=error, email=email, status=status,
                           unverified=client.self_registered)
    _set_cookie(response, request, state, CSRF_COOKIE, csrf, max_age=3600)
    return response


async def _consent(state, params, grant, user: User, session: OAuthSignInSession) -> Response:
    """Stores the validated authorization request and shows the consent page for its id."""
    client = grant.request.client
    request_id = new_id("areq")
    now = utcnow()
    async with state.db.write_session() as s:
        s.add(OAuthAuthorizationRequest(
            id=request_id, session_hash=session.token_hash, user_id=user.id, client_id=client.client_id,
            params=[[k, v] for k, v in params], created_at=now, expires_at=now + AUTHORIZATION_REQUEST_TTL,
        ))
        await s.commit()
    return consent_page(
        request_id, client.name, user.email, scope_to_list(grant.request.scope) or [], grant.redirect_uri,
        session.csrf_token, unverified=client.self_registered,
    )


async def _stored_request(db: Database, request_id: str | None) -> OAuthAuthorizationRequest | None:
    if not request_id or len(request_id) > 40:
        return None
    async with db.session() as s:
        row = await s.get(OAuthAuthorizationRequest, request_id)
    if row is None or row.used_at is not None or as_utc(row.expires_at) <= utcnow():
        return None
    return row


async def _use_request(db: Database, row: OAuthAuthorizationRequest) -> bool:
    """Marks the stored request answered; False if another submission answered it first."""
    async with db.write_session() as s:
        res = await s.execute(
            update(OAuthAuthorizationRequest)
            .where(OAuthAuthorizationRequest.id == row.id, OAuthAuthorizationRequest.used_at.is_(None))
            .values(used_at=utcnow())
        )
        await s.commit()
    return res.rowcount == 1


@router.get("/oauth/authorize", operation_id="oauthAuthorizePage", include_in_schema=True,
            summary="Authorization endpoint (sign-in and consent page)", response_class=Response,
            responses={200: {"content": {"text/html": {}}, "description": "Sign-in or consent page"},
                       302: {"description": "Back to the client's redirect URI with code or error, and state"},
                       400: {"content": {"text/html": {}}, "description": "Invalid request (never redirected)"}})
async def authorize_page(request: Request, state: State) -> Response:
    params = _oauth_params(list(request.query_params.multi_items()))
    checked = await _validate_authorize(state, params, request)
    if isinstance(checked, Response):
        return checked
    c, _oreq, grant = checked
    signed_in = await _session_user(state.db, request)
    if signed_in is None:
        return _signin(request, state, params, grant.request.client)
    return await _consent(state, params, grant, signed_in[1], signed_in[0])


@router.post("/oauth/authorize", operation_id="oauthAuthorizeSubmit", include_in_schema=True,
             summary="Sign-in and consent form submissions", response_class=Response,
             responses={302: {"description": "Back to the client with code/error and state"},
                        303: {"description": "Signed in: on to the consent page"}})
async def authorize_submit(request: Request, state: State) -> Response:
    form = await request.form()
    items = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    fields = dict(items)
    action = fields.get("action")
    if action != "signin":
        return await _consent_submit(request, state, fields)
    params = _oauth_params(items)
    checked = await _validate_authorize(state, params, request)
    if isinstance(checked, Response):
        return checked
    c, oreq, grant = checked
    client = grant.request.client
    here = "/oauth/authorize?" + urlencode(params)

    if action == "signin":
        cookie = request.cookies.get(CSRF_COOKIE) or ""
        if not cookie or not constant_time_equals(cookie, fields.get("csrf_token", "")):
            return _signin(request, state, params, client, status=400,
                           error="This sign-in form has expired or was not sent from this site. Please try again.")
        email = (fields.get("email") or "").strip().lower()
        # The same throttled check as the console's sign-in (per account and per IP, with lockout).
        try:
            user = await authenticate_password(state.db, state.settings, email, fields.get("password") or "",
                                               request.client.host if request.client else None)
        except ServiceError as err:
            response = _signin(request, state, params, client, email=email, status=err.status,
                               error=err.message)
            response.headers.update(err.headers)
            return response
        token = secrets.token_urlsafe(32)
        async with state.db.write_session() as s:
            # Housekeeping rides on sign-ins: drop expired sessions, and codes a day past expiry
            # (kept that long so a late replay still revokes what the code issued).
            await s.execute(delete(OAuthSignInSession).where(OAuthSignInSession.expires_at < utcnow()))
            await s.execute(delete(OAuthAuthorizationCode)
                            .where(OAuthAuthorizationCode.expires_at < utcnow() - timedelta(days=1)))
            await s.execute(delete(OAuthAuthorizationRequest)
                            .where(OAuthAuthorizationRequest.expires_at < utcnow()))
            s.add(OAuthSignInSession(
                token_hash=hash_token(token), user_id=user.id, csrf_token=secrets.token_urlsafe(32),
                created_at=utcnow(), expires_at=utcnow() + SESSION_TTL,
            ))
            await s.commit()
        # Post/redirect/get to the consent page on this same endpoint (never to a caller's URL).
        response = Response(status_code=303, headers={"Location": here, "Cache-Control": "no-store"})
        _set_cookie(response, request, state, SESSION_COOKIE, token, max_age=int(SESSION_TTL.total_seconds()))
        response.delete_cookie(CSRF_COOKIE, path="/oauth")
        return response
    return error_page("Request refused", "Unknown action.", status=400)


async def _consent_submit(request: Request, state, fields: dict[str, str]) -> Response:
    """Allow, Deny or "use another account" on the consent page, for the stored request named by
    ``request_id``. OAuth parameters posted alongside are ignored: the stored ones are used."""
    action = fields.get("action")
    stored = await _stored_request(state.db, fields.get("request_id"))
    expired = error_page("This authorization request has expired",
                         "It was already answered or is too old. Go back to the application and start again.")
    signed_in = await _session_user(state.db, request)
    if signed_in is None:
        if stored is None:
            return expired
        params = [(k, v) for k, v in stored.params]
        checked = await _validate_authorize(state, params, request)
        if isinstance(checked, Response):
            return checked
        return _signin(request, state, params, checked[2].request.client, status=401,
                       error="Your sign-in has expired. Please sign in again.")
    session, user = signed_in
    if not constant_time_equals(session.csrf_token, fields.get("csrf_token", "")):
        return error_page("Request refused", "The consent form was not sent from this site.", status=403)
    if stored is None:
        return expired
    if stored.session_hash != session.token_hash or stored.user_id != user.id:
        return error_page("Request refused", "This authorization request belongs to another sign-in.", status=403)
    params = [(k, v) for k, v in stored.params]
    # Validated again: the client may have been deleted or changed since the page was shown.
    checked = await _validate_authorize(state, params, request)
    if isinstance(checked, Response):
        return checked
    c, oreq, grant = checked
    here = "/oauth/authorize?" + urlencode(params)

    if action == "signout":
        async with state.db.write_session() as s:
            await s.execute(delete(OAuthSignInSession).where(OAuthSignInSession.token_hash == session.token_hash))
            await s.commit()
        response = Response(status_code=303, headers={"Location": here, "Cache-Control": "no-store"})
        response.delete_cookie(SESSION_COOKIE, path="/oauth")
        return response
    if action not in ("approve", "deny"):
        return error_page("Request refused", "Unknown action.", status=400)
    if not await _use_request(state.db, stored):
        return expired

    grant_user = None
    if action == "approve":
        grant_user = UserView.of(user)
        c.users[user.id] = grant_user
    result = await run_endpoint(
        state.db, c, lambda: authorization_server.create_authorization_response(request=oreq, grant_user=grant_user, grant=grant)
    )
    return to_response(*result)
