"""OAuth 2.0 routes: ``/oauth/authorize``, ``/oauth/token``, ``/oauth/revoke``, ``/oauth/introspect``,
``/.well-known/oauth-authorization-server`` and the signed-in user's ``/v1/oauth/clients``.

The protocol logic is authlib's (see ``codetether/api/oauth/server.py`` for how it is adapted); this module
reads the HTTP request, loads the rows a call needs, runs authlib and turns its answer into a
Starlette response. ``/oauth/authorize`` also owns the browser side: a sign-in form (local users
with passwords, CSRF-protected by a double-submit cookie), a sign-in session cookie, and a consent
page listing the requested scopes (CSRF-protected by a token bound to the session).
Token-endpoint answers are RFC 6749 JSON (``{"error", "error_description"}``), which is what OAuth
clients parse; the ``/v1`` route answers problem+json like the rest of the API.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated
from urllib.parse import urlencode

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.util import extract_basic_authorization, scope_to_list
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select, update

from codetether.api.deps import AccountManage, State
from codetether.api.edge.errors import Problem, problem_responses
from codetether.api.oauth.pages import consent_page, error_page, signin_page
from codetether.api.oauth.server import (
    ACCESS_TOKEN_TTL,
    CODE_TTL,
    REFRESH_TOKEN_TTL,
    CodeTetherAuthorizationServer,
    StarletteOAuth2Request,
    UserView,
    load_context,
    run_endpoint,
    with_context,
)
from codetether.core.db import Database
from codetether.core.errors import ServiceError
from codetether.core.ids import as_utc, new_id, utcnow
from codetether.core.models import OAuthAuthorizationCode, OAuthAuthorizationRequest, OAuthSignInSession, User
from codetether.accounts.signin import authenticate_password
from codetether.api.edge.idempotency import shown_once
from codetether.accounts.oauth_clients import (
    OAuthClientError,
    create_oauth_client,
    delete_oauth_client,
    get_oauth_client,
    list_oauth_clients,
)
from codetether.accounts.credentials import (
    OAUTH_SCOPES,
    constant_time_equals,
    hash_token,
)

router = APIRouter(tags=["oauth"])

SESSION_COOKIE = "ct_oauth_session"
CSRF_COOKIE = "ct_oauth_csrf"
SESSION_TTL = timedelta(hours=8)
# How long a consent page may wait for its answer.
AUTHORIZATION_REQUEST_TTL = timedelta(minutes=30)
OAUTH_PARAMS = (
    "response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method",
)

_server = CodeTetherAuthorizationServer()


def _oauth_params(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in items if k in OAUTH_PARAMS]


def _first(params: list[tuple[str, str]], name: str) -> str | None:
    for k, v in params:
        if k == name:
            return v
    return None


def _to_response(status: int, body, headers: list[tuple[str, str]]) -> Response:
    if status in (301, 302, 303):
        response = Response(status_code=status, headers={"Cache-Control": "no-store"})
        for k, v in headers:
            response.headers[k] = v
        return response
    response = JSONResponse(body if body not in ("", None) else {}, status_code=status)
    for k, v in headers:
        if k.lower() != "content-type":
            response.headers[k] = v
    response.headers["Cache-Control"] = "no-store"
    return response


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
        grant = with_context(c, lambda: _server.get_consent_grant(request=oreq, end_user=None))
    except OAuth2Error as err:
        if err.redirect_uri:
            return _to_response(*err())
        description = err.description or err.error
        return error_page("This authorization request is not valid", f"{err.error}: {description}")
    return c, oreq, grant


def _signin(request: Request, state, params, client_name: str, *, error: str | None = None,
            email: str = "", status: int = 200) -> Response:
    csrf = secrets.token_urlsafe(24)
    response = signin_page(params, client_name, csrf, error=error, email=email, status=status)
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
        session.csrf_token,
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
        return _signin(request, state, params, grant.request.client.name)
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
    client_name = grant.request.client.name
    here = "/oauth/authorize?" + urlencode(params)

    if action == "signin":
        cookie = request.cookies.get(CSRF_COOKIE) or ""
        if not cookie or not constant_time_equals(cookie, fields.get("csrf_token", "")):
            return _signin(request, state, params, client_name, status=400,
                           error="This sign-in form has expired or was not sent from this site. Please try again.")
        email = (fields.get("email") or "").strip().lower()
        # The same throttled check as the console's sign-in (per account and per IP, with lockout).
        try:
            user = await authenticate_password(state.db, state.settings, email, fields.get("password") or "",
                                               request.client.host if request.client else None)
        except ServiceError as err:
            response = _signin(request, state, params, client_name, email=email, status=err.status,
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
        return _signin(request, state, params, checked[2].request.client.name, status=401,
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
        state.db, c, lambda: _server.create_authorization_response(request=oreq, grant_user=grant_user, grant=grant)
    )
    return _to_response(*result)


def _form_client_ids(request: Request, form: list[tuple[str, str]]) -> list[str | None]:
    basic_id, _secret = extract_basic_authorization(request.headers)
    return [basic_id, dict(form).get("client_id")]


_TOKEN_FORM = {
    "requestBody": {
        "required": True,
        "content": {"application/x-www-form-urlencoded": {"schema": {
            "type": "object",
            "properties": {
                "grant_type": {"type": "string", "enum": ["authorization_code", "refresh_token", "client_credentials"]},
                "code": {"type": "string"}, "redirect_uri": {"type": "string"}, "code_verifier": {"type": "string"},
                "refresh_token": {"type": "string"}, "scope": {"type": "string"},
                "client_id": {"type": "string"}, "client_secret": {"type": "string"},
            },
            "required": ["grant_type"],
        }}},
    }
}
_TOKEN_LOOKUP_FORM = {
    "requestBody": {
        "required": True,
        "content": {"application/x-www-form-urlencoded": {"schema": {
            "type": "object",
            "properties": {
                "token": {"type": "string"},
                "token_type_hint": {"type": "string", "enum": ["access_token", "refresh_token"]},
                "client_id": {"type": "string"}, "client_secret": {"type": "string"},
            },
            "required": ["token"],
        }}},
    }
}


async def _form_items(request: Request) -> list[tuple[str, str]]:
    form = await request.form()
    return [(k, v) for k, v in form.multi_items() if isinstance(v, str)]


@router.post("/oauth/token", operation_id="oauthToken", summary="Token endpoint (RFC 6749)",
             openapi_extra=_TOKEN_FORM, response_class=JSONResponse)
async def token(request: Request, state: State) -> Response:
    form = await _form_items(request)
    fields = dict(form)
    grant_type = fields.get("grant_type")
    c = await load_context(
        state.db,
        client_ids=_form_client_ids(request, form),
        code=fields.get("code") if grant_type == "authorization_code" else None,
        token=fields.get("refresh_token") if grant_type == "refresh_token" else None,
        token_kinds=("refresh_token",),
        refresh_grace=timedelta(seconds=state.settings.oauth_refresh_grace_seconds),
    )
    oreq = StarletteOAuth2Request("POST", request.headers, [], form)
    return _to_response(*await run_endpoint(state.db, c, lambda: _server.create_token_response(oreq)))


async def _token_lookup(request: Request, state, endpoint: str) -> Response:
    form = await _form_items(request)
    fields = dict(form)
    hint = fields.get("token_type_hint")
    kinds = ("refresh_token", "access_token") if hint == "refresh_token" else ("access_token", "refresh_token")
    c = await load_context(state.db, client_ids=_form_client_ids(request, form), token=fields.get("token"),
                           token_kinds=kinds)
    oreq = StarletteOAuth2Request("POST", request.headers, [], form)
    return _to_response(*await run_endpoint(state.db, c, lambda: _server.create_endpoint_response(endpoint, oreq)))


@router.post("/oauth/revoke", operation_id="oauthRevoke", summary="Token revocation (RFC 7009)",
             openapi_extra=_TOKEN_LOOKUP_FORM, response_class=JSONResponse)
async def revoke(request: Request, state: State) -> Response:
    return await _token_lookup(request, state, "revocation")


@router.post("/oauth/introspect", operation_id="oauthIntrospect", summary="Token introspection (RFC 7662)",
             openapi_extra=_TOKEN_LOOKUP_FORM, response_class=JSONResponse)
async def introspect(request: Request, state: State) -> Response:
    return await _token_lookup(request, state, "introspection")


@router.get("/.well-known/oauth-authorization-server", operation_id="oauthMetadata",
            summary="Authorization server metadata (RFC 8414)")
async def metadata(request: Request, state: State) -> JSONResponse:
    base = (state.settings.public_url or str(request.base_url)).rstrip("/")
    body = {
        "issuer": base,
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "introspection_endpoint": f"{base}/oauth/introspect",
        "scopes_supported": list(OAUTH_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "service_documentation": f"{base}/docs",
    }
    if state.settings.oauth_dynamic_registration:
        body["registration_endpoint"] = f"{base}/oauth/register"  # RFC 7591, codetether/api/oauth/registration.py
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=3600"})


# --- /v1/oauth/clients -----------------------------------------------------------------------


class OAuthClientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=200)]
    redirect_uris: Annotated[list[str], Field(min_length=1, max_length=10)]
    public: bool = Field(default=False, description="A public client has no secret and must use PKCE (S256).")
    scopes: list[str] | None = Field(default=None, description="Scopes the client may request; default: yours.")


class OAuthClientOut(BaseModel):
    client_id: str
    name: str
    public: bool
    redirect_uris: list[str]
    scopes: list[str]
    owner_id: str | None
    created_at: str | None


class OAuthClientCreated(OAuthClientOut):
    client_secret: str | None = Field(
        default=None, description="Shown only in this response (confidential clients; null in an idempotent replay)."
    )
    notice: str | None = Field(default=None, description="Set in an idempotent replay: the secret was shown once.")


class OAuthClientList(BaseModel):
    data: list[OAuthClientOut]


@router.post("/v1/oauth/clients", operation_id="createOAuthClient", status_code=201, response_model=OAuthClientCreated,
             summary="Register an OAuth client owned by you", responses=problem_responses(401, 403, 422, 429))
async def create_client(body: OAuthClientCreate, request: Request, response: Response, principal: AccountManage,
                        state: State) -> OAuthClientCreated:
    # Default: what the caller holds that a client may hold (never account:manage).
    scopes = body.scopes if body.scopes is not None else [s for s in principal.scopes if s in OAUTH_SCOPES]
    extra = [s for s in scopes if s in OAUTH_SCOPES and s not in principal.scopes and principal.auth_method != "console"]
    if extra:
        raise Problem(403, "insufficient_scope", f"you cannot let a client request scopes you do not hold: {', '.join(extra)}")
    try:
        out = await create_oauth_client(
            state.db, name=body.name, redirect_uris=body.redirect_uris, public=body.public,
            owner_id=principal.user_id, scopes=scopes,
        )
    except OAuthClientError as err:
        raise Problem(422, "invalid_oauth_client", str(err)) from None
    shown_once(request, response, {"client_secret": None})
    return OAuthClientCreated(**out)


@router.get("/v1/oauth/clients", operation_id="listOAuthClients", response_model=OAuthClientList,
            summary="List the OAuth clients you own", responses=problem_responses(401, 403, 429))
async def list_clients(principal: AccountManage, state: State) -> OAuthClientList:
    return OAuthClientList(data=[OAuthClientOut(**c) for c in await list_oauth_clients(state.db, principal.user_id)])


@router.get("/v1/oauth/clients/{client_id}", operation_id="getOAuthClient", response_model=OAuthClientOut,
            summary="Get one of your OAuth clients", responses=problem_responses(401, 403, 404, 429))
async def get_client(client_id: str, principal: AccountManage, state: State) -> OAuthClientOut:
    found = await get_oauth_client(state.db, client_id, owner_id=principal.user_id)
    if found is None:
        raise Problem(404, "oauth_client_not_found", f"no OAuth client {client_id!r}")
    return OAuthClientOut(**found)


@router.delete("/v1/oauth/clients/{client_id}", operation_id="deleteOAuthClient", status_code=204,
               summary="Delete one of your OAuth clients, revoking every token and grant it holds",
               responses=problem_responses(401, 403, 404, 429))
async def delete_client(client_id: str, principal: AccountManage, state: State) -> Response:
    if not await delete_oauth_client(state.db, client_id, owner_id=principal.user_id):
        raise Problem(404, "oauth_client_not_found", f"no OAuth client {client_id!r}")
    return Response(status_code=204)


TOKEN_LIFETIMES = {
    "authorization_code": int(CODE_TTL.total_seconds()),
    "access_token": int(ACCESS_TOKEN_TTL.total_seconds()),
    "refresh_token": int(REFRESH_TOKEN_TTL.total_seconds()),
}
