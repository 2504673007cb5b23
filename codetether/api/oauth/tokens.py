"""``POST /oauth/token`` (RFC 6749), ``POST /oauth/revoke`` (RFC 7009) and ``POST /oauth/introspect``
(RFC 7662): form posts answered with RFC 6749 JSON (``{"error", "error_description"}``), which is
what OAuth clients parse.

Each route loads the rows the call needs (``codetether/api/oauth/unit_of_work.py``), runs authlib
(``codetether/api/oauth/server.py``) and writes what it recorded.
"""

from __future__ import annotations

from datetime import timedelta

from authlib.oauth2.rfc6749.util import extract_basic_authorization
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from codetether.api.deps import State
from codetether.api.oauth.authlib_http import StarletteOAuth2Request, to_response
from codetether.api.oauth.server import authorization_server
from codetether.api.oauth.token_exchange import GRANT_TYPE as TOKEN_EXCHANGE
from codetether.api.oauth.token_exchange import exchange
from codetether.api.oauth.unit_of_work import load_context, run_endpoint

router = APIRouter(tags=["oauth"])


def _form_client_ids(request: Request, form: list[tuple[str, str]]) -> list[str | None]:
    basic_id, _secret = extract_basic_authorization(request.headers)
    return [basic_id, dict(form).get("client_id")]


_TOKEN_FORM = {
    "requestBody": {
        "required": True,
        "content": {"application/x-www-form-urlencoded": {"schema": {
            "type": "object",
            "properties": {
                "grant_type": {"type": "string", "enum": ["authorization_code", "refresh_token", "client_credentials",
                                                           TOKEN_EXCHANGE]},
                "code": {"type": "string"}, "redirect_uri": {"type": "string"}, "code_verifier": {"type": "string"},
                "refresh_token": {"type": "string"}, "scope": {"type": "string"},
                "subject_token": {"type": "string", "description": "Token exchange (RFC 8693): the partner's JWT."},
                "subject_token_type": {"type": "string", "enum": ["urn:ietf:params:oauth:token-type:jwt"]},
                "requested_token_type": {"type": "string",
                                         "enum": ["urn:ietf:params:oauth:token-type:access_token"]},
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


@router.post("/oauth/token", operation_id="oauthToken", summary="Token endpoint (RFC 6749, RFC 8693 token exchange)",
             openapi_extra=_TOKEN_FORM, response_class=JSONResponse)
async def token(request: Request, state: State) -> Response:
    form = await _form_items(request)
    fields = dict(form)
    grant_type = fields.get("grant_type")
    if grant_type == TOKEN_EXCHANGE:
        return await exchange(request, state, fields)
    c = await load_context(
        state.db,
        client_ids=_form_client_ids(request, form),
        code=fields.get("code") if grant_type == "authorization_code" else None,
        token=fields.get("refresh_token") if grant_type == "refresh_token" else None,
        token_kinds=("refresh_token",),
        refresh_grace=timedelta(seconds=state.settings.oauth_refresh_grace_seconds),
    )
    oreq = StarletteOAuth2Request("POST", request.headers, [], form)
    return to_response(*await run_endpoint(state.db, c, lambda: authorization_server.create_token_response(oreq)))


async def _token_lookup(request: Request, state, endpoint: str) -> Response:
    form = await _form_items(request)
    fields = dict(form)
    hint = fields.get("token_type_hint")
    kinds = ("refresh_token", "access_token") if hint == "refresh_token" else ("access_token", "refresh_token")
    c = await load_context(state.db, client_ids=_form_client_ids(request, form), token=fields.get("token"),
                           token_kinds=kinds)
    oreq = StarletteOAuth2Request("POST", request.headers, [], form)
    return to_response(*await run_endpoint(state.db, c, lambda: authorization_server.create_endpoint_response(endpoint, oreq)))


@router.post("/oauth/revoke", operation_id="oauthRevoke", summary="Token revocation (RFC 7009)",
             openapi_extra=_TOKEN_LOOKUP_FORM, response_class=JSONResponse)
async def revoke(request: Request, state: State) -> Response:
    return await _token_lookup(request, state, "revocation")


@router.post("/oauth/introspect", operation_id="oauthIntrospect", summary="Token introspection (RFC 7662)",
             openapi_extra=_TOKEN_LOOKUP_FORM, response_class=JSONResponse)
async def introspect(request: Request, state: State) -> Response:
    return await _token_lookup(request, state, "introspection")
