"""Token exchange (RFC 8693) at ``/oauth/token`` for partners: a partner's backend trades a JWT it
signed for one of its users (``codetether/partners/subject_tokens.py``) for a short-lived access
token acting as that user's end user, created on first use.

    grant_type=urn:ietf:params:oauth:grant-type:token-exchange
    subject_token=<JWT>  subject_token_type=urn:ietf:params:oauth:token-type:jwt
    [scope=...]  [requested_token_type=urn:ietf:params:oauth:token-type:access_token]

The partner authenticates as its OAuth client (``client_secret_basic`` or ``client_secret_post``).
The answer is RFC 6749 JSON: ``{access_token, token_type, expires_in, scope, issued_token_type,
end_user_id, workspace_id}``; a bad, expired, replayed or wrongly addressed subject token is
``400 invalid_grant``. The access token is an ordinary ``cta_`` token (``oauth_tokens``) of the
end user's account, issued to the partner's client, without a refresh token.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from authlib.oauth2.rfc6749.util import extract_basic_authorization, scope_to_list
from fastapi import Request
from fastapi.responses import JSONResponse

from codetether.accounts.credentials import hash_token
from codetether.api.edge.public_base import public_base
from codetether.api.oauth.views import ACCESS_TOKEN_PREFIX, ClientView
from codetether.api.state import AppState
from codetether.core.ids import new_id, utcnow
from codetether.core.models import OAuthClient, OAuthToken
from codetether.partners.end_users import EndUserProfile, provision
from codetether.partners.events import END_USER_CREATED, publish_end_user_event
from codetether.partners.registry import END_USER_SCOPES, partner_for_client
from codetether.partners.subject_tokens import InvalidSubjectToken, JwksCache, claim_jti, verify_subject_token

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
END_USER_TOKEN_TTL = timedelta(minutes=15)
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _error(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status,
                        headers={**_NO_STORE, **(headers or {})})


def jwks_cache(state: AppState) -> JwksCache:
    cache = state.extras.get("partner_jwks")
    if cache is None:
        cache = state.extras["partner_jwks"] = JwksCache()
    return cache


async def _authenticate_client(request: Request, state: AppState, fields: dict[str, str]) -> tuple[ClientView | None, bool]:
    """The client the request authenticates as, and whether it used HTTP Basic."""
    basic_id, basic_secret = extract_basic_authorization(request.headers)
    if basic_id:
        client_id, secret, used_basic = basic_id, basic_secret or "", True
    else:
        client_id, secret, used_basic = fields.get("client_id"), fields.get("client_secret") or "", False
    if not client_id or not secret:
        return None, used_basic
    async with state.db.session() as s:
        row = await s.get(OAuthClient, client_id)
    if row is None:
        return None, used_basic
    view = ClientView.of(row)
    return (view if view.check_client_secret(secret) else None), used_basic


async def exchange(request: Request, state: AppState, fields: dict[str, str]) -> JSONResponse:
    client, used_basic = await _authenticate_client(request, state, fields)
    if client is None:
        headers = {"WWW-Authenticate": 'Basic realm="codetether"'} if used_basic else None
        return _error(401, "invalid_client", "client authentication failed", headers)
    partner = await partner_for_client(state.db, client.client_id)
    if partner is None:
        return _error(400, "unauthorized_client", "only a partner's client may use token exchange")
    if fields.get("subject_token_type") != JWT_TOKEN_TYPE:
        return _error(400, "invalid_request", f"subject_token_type must be {JWT_TOKEN_TYPE}")
    requested_type = fields.get("requested_token_type")
    if requested_type not in (None, "", ACCESS_TOKEN_TYPE):
        return _error(400, "invalid_request", f"requested_token_type may only be {ACCESS_TOKEN_TYPE}")
    if fields.get("actor_token"):
        return _error(400, "invalid_request", "actor_token is not supported")
    token = fields.get("subject_token")
    if not token:
        return _error(400, "invalid_request", "subject_token is required")
    requested = scope_to_list(fields.get("scope")) or list(END_USER_SCOPES)
    if any(s not in END_USER_SCOPES for s in requested):
        return _error(400, "invalid_scope", f"an end user's token may carry only: {' '.join(END_USER_SCOPES)}")
    scope = " ".join(s for s in END_USER_SCOPES if s in requested)
    issuer = public_base(request.scope, state.settings).url
    try:
        claims = await verify_subject_token(state.settings, jwks_cache(state), partner, token, issuer)
        await claim_jti(state.db, partner, claims["jti"], claims["exp"])
    except InvalidSubjectToken as err:
        return _error(400, "invalid_grant", str(err))
    profile = EndUserProfile(email=claims.get("email"), first_name=claims.get("given_name"),
                             last_name=claims.get("family_name"))
    provisioned = await provision(state.db, partner, claims["sub"], profile,
                                  workspace_external_id=claims.get("workspace"), refresh_profile=True)
    end_user = provisioned.end_user
    if provisioned.created:
        await publish_end_user_event(state.db, await state.temporal(), state.settings, partner, END_USER_CREATED,
                                     end_user)
    access = ACCESS_TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    async with state.db.write_session() as s:
        s.add(OAuthToken(id=new_id("tok"), family_id=new_id("fam"), client_id=client.client_id, user_id=provisioned.user_id,
                         access_token_hash=hash_token(access), scope=scope, issued_at=now,
                         expires_at=now + END_USER_TOKEN_TTL))
        await s.commit()
    return JSONResponse({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": int(END_USER_TOKEN_TTL.total_seconds()),
        "scope": scope,
        "issued_token_type": ACCESS_TOKEN_TYPE,
        "end_user_id": end_user["end_user_id"],
        "workspace_id": end_user["workspace_id"],
    }, headers=_NO_STORE)
