"""Console sign-in through the external OpenID Connect issuer (``CODETETHER_OIDC_ISSUER`` with
``CODETETHER_OIDC_CLIENT_ID``/``_SECRET``): ``/console/login/oidc`` sends the browser to the
issuer (authorization code flow, PKCE S256, ``state`` and ``nonce``), ``/console/oidc/callback``
redeems the code, verifies the ID token against the issuer's keys (the same key set the bearer
resolver in ``codetether/api/oauth/oidc.py`` uses) and signs the mapped user in.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from joserfc import jwt
from joserfc.errors import JoseError

from codetether.api.console.auth import start_session
from codetether.api.console.web import (
    PAGE_HEADERS,
    PRE_COOKIE,
    PRE_TTL_SECONDS,
    PREFIX,
    get_state,
    log,
    safe_next,
    set_cookie,
)
from codetether.api.edge.public_base import public_base
from codetether.core.errors import ServiceError

router = APIRouter(prefix=PREFIX, include_in_schema=False)

FLOW_COOKIE = "ct_console_oidc"
FLOW_TTL_SECONDS = 600
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


def enabled(settings) -> bool:
    return bool(settings.oidc_issuer and settings.oidc_client_id)


def _refused(message: str) -> ServiceError:
    return ServiceError(400, "oidc_signin_failed", f"Single sign-on did not complete: {message}")


async def _discovery(issuer: str) -> dict:
    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as http:
        r = await http.get(f"{issuer.rstrip('/')}/.well-known/openid-configuration")
        r.raise_for_status()
        return r.json()


def _redirect_uri(request: Request) -> str:
    base = public_base(request.scope, get_state(request).settings).url
    return f"{base}{PREFIX}/oidc/callback"


def _serializer(key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(key, salt="codetether-console-oidc")


@router.get("/login/oidc", operation_id="consoleOidcLogin")
async def oidc_login(request: Request) -> Response:
    settings = get_state(request).settings
    if not enabled(settings):
        raise ServiceError(404, "oidc_not_configured", "Single sign-on is not configured on this server.")
    try:
        config = await _discovery(settings.oidc_issuer)
    except (httpx.HTTPError, ValueError) as err:
        raise ServiceError(503, "oidc_unavailable", f"The identity provider cannot be reached: {err}") from None
    state, nonce, verifier = (secrets.token_urlsafe(24) for _ in range(3))
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    key = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)
    flow = _serializer(key).dumps({"state": state, "nonce": nonce, "verifier": verifier,
                                   "next": safe_next(request.query_params.get("next"))})
    query = urlencode({"response_type": "code", "client_id": settings.oidc_client_id, "scope": "openid email profile",
                       "redirect_uri": _redirect_uri(request), "state": state, "nonce": nonce,
                       "code_challenge": challenge, "code_challenge_method": "S256"})
    response = RedirectResponse(f"{config['authorization_endpoint']}?{query}", status_code=303, headers=PAGE_HEADERS)
    set_cookie(response, request, PRE_COOKIE, key, PRE_TTL_SECONDS)
    set_cookie(response, request, FLOW_COOKIE, flow, FLOW_TTL_SECONDS)
    return response


@router.get("/oidc/callback", operation_id="consoleOidcCallback")
async def oidc_callback(request: Request) -> Response:
    app_state = get_state(request)
    settings = app_state.settings
    if not enabled(settings):
        raise ServiceError(404, "oidc_not_configured", "Single sign-on is not configured on this server.")
    q = request.query_params
    if q.get("error"):
        raise _refused(q.get("error_description") or q["error"])
    try:
        flow = _serializer(request.cookies.get(PRE_COOKIE) or "").loads(
            request.cookies.get(FLOW_COOKIE) or "", max_age=FLOW_TTL_SECONDS)
    except BadSignature:
        raise _refused("the sign-in took too long or was started in another browser; try again") from None
    if not secrets.compare_digest(str(q.get("state") or ""), flow["state"]) or not q.get("code"):
        raise _refused("the answer does not belong to this sign-in")
    try:
        config = await _discovery(settings.oidc_issuer)
        async with httpx.AsyncClient(timeout=10, follow_redirects=False) as http:
            r = await http.post(config["token_endpoint"], data={
                "grant_type": "authorization_code", "code": q["code"], "redirect_uri": _redirect_uri(request),
                "client_id": settings.oidc_client_id, "code_verifier": flow["verifier"],
                **({"client_secret": settings.oidc_client_secret} if settings.oidc_client_secret else {}),
            })
        if r.status_code != 200:
            raise _refused(f"the identity provider refused the code ({r.status_code})")
        id_token = r.json().get("id_token")
    except (httpx.HTTPError, ValueError, KeyError) as err:
        raise ServiceError(503, "oidc_unavailable", f"The identity provider cannot be reached: {err}") from None
    resolver = app_state.extras.get("oidc")
    if not id_token or resolver is None:
        raise _refused("no ID token came back")
    try:
        # Unverified, only to pick the key; the signature is checked by jwt.decode below.
        segment = id_token.split(".", 1)[0]
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        keys = await resolver.keys(header.get("kid"))
        if keys is None:
            raise _refused("the identity provider's keys cannot be fetched")
        token = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
        jwt.JWTClaimsRegistry(
            leeway=30, iss={"essential": True, "value": resolver.issuer},
            aud={"essential": True, "value": settings.oidc_client_id}, exp={"essential": True},
            sub={"essential": True}, nonce={"essential": True, "value": flow["nonce"]},
        ).validate(token.claims)
    except (JoseError, ValueError, AttributeError) as err:
        log.info("console OIDC sign-in refused: %s", err)
        raise _refused("the ID token is not valid") from None
    user = await resolver.user_for(token.claims)
    if user is None:
        raise _refused("this identity cannot be used here")
    response = await start_session(request, user, flow["next"])
    response.delete_cookie(FLOW_COOKIE, path=PREFIX)
    return response
