"""Scope enforcement matrix: every ``/v1`` route of the running app (read from its OpenAPI
document, so routes added later are covered) × every scope, with OAuth access tokens and with API
keys. A credential holding the route's scope gets past the check (any answer but 401/403); any
other scope gets ``403 insufficient_scope`` naming the scope needed. Routes the contract lists must
need exactly the scope the contract gives them. Credential management needs ``account:manage``,
which only first-party credentials (API keys) can hold: an OAuth client cannot obtain it, and
OAuth tokens get 403 on those routes whatever their scopes."""

from __future__ import annotations

import re
import uuid

from codetether.accounts.service import create_api_key, create_user
from codetether.accounts.oauth_clients import create_oauth_client
from codetether.accounts.credentials import ALL_SCOPES, FIRST_PARTY_SCOPES, OAUTH_SCOPES, PARTNER_SCOPES
from tests.oauth.conftest import REDIRECT, basic

ANY = "any"
# CONTRACT.md §2, §3, §5 (path parameters written as {}).
CONTRACT: dict[tuple[str, str], str] = {
    ("POST", "/v1/automation/tasks"): "tasks:write",
    ("GET", "/v1/automation/tasks/{}"): "tasks:read",
    ("GET", "/v1/automation/tasks"): "tasks:read",
    ("DELETE", "/v1/automation/tasks/{}"): "tasks:write",
    ("POST", "/v1/automation/tasks/{}/input"): "messages:write",
    ("POST", "/v1/automation/tasks/{}/messages"): "messages:write",
    ("POST", "/v1/automation/messages"): "messages:write",
    ("GET", "/v1/automation/tasks/{}/events"): "tasks:read",
    ("GET", "/v1/automation/me"): ANY,
    ("GET", "/v1/automation/models"): ANY,
    ("GET", "/v1/automation/codebases"): "codebases:read",
    ("POST", "/v1/webhooks"): "webhooks:manage",
    ("GET", "/v1/webhooks"): "webhooks:manage",
    ("GET", "/v1/webhooks/{}"): "webhooks:manage",
    ("PATCH", "/v1/webhooks/{}"): "webhooks:manage",
    ("DELETE", "/v1/webhooks/{}"): "webhooks:manage",
    ("GET", "/v1/webhooks/{}/deliveries"): "webhooks:manage",
    ("POST", "/v1/webhooks/{}/deliveries/{}/redeliver"): "webhooks:manage",
    ("POST", "/v1/webhooks/{}/test"): "webhooks:manage",
    # §11 and §13.
    ("POST", "/v1/automation/tasks/cancel"): "tasks:write",
    ("GET", "/v1/automation/budget"): "tasks:read",
    ("PUT", "/v1/automation/budget"): "account:manage",
    ("GET", "/v1/automation/usage"): "tasks:read",
    ("POST", "/v1/api-keys"): "account:manage",
    ("GET", "/v1/api-keys"): "account:manage",
    ("DELETE", "/v1/api-keys/{}"): "account:manage",
    ("POST", "/v1/oauth/clients"): "account:manage",
    ("GET", "/v1/oauth/clients"): "account:manage",
    ("GET", "/v1/oauth/clients/{}"): "account:manage",
    ("DELETE", "/v1/oauth/clients/{}"): "account:manage",
    # §14: only a partner's client credentials token holds it (tests/partners/ covers those routes).
    ("POST", "/v1/partner/end_users"): "partner:manage",
    ("GET", "/v1/partner/end_users"): "partner:manage",
    ("GET", "/v1/partner/end_users/{}"): "partner:manage",
    ("PATCH", "/v1/partner/end_users/{}"): "partner:manage",
    ("DELETE", "/v1/partner/end_users/{}"): "partner:manage",
    ("POST", "/v1/partner/end_users/{}/account_links"): "partner:manage",
    ("POST", "/v1/partner/sponsorships"): "partner:manage",
    ("GET", "/v1/partner/sponsorships"): "partner:manage",
    ("GET", "/v1/partner/sponsorships/{}"): "partner:manage",
    ("PATCH", "/v1/partner/sponsorships/{}"): "partner:manage",
    ("DELETE", "/v1/partner/sponsorships/{}"): "partner:manage",
    ("GET", "/v1/partner/usage"): "partner:manage",
    ("POST", "/v1/partner/embed_sessions"): "partner:manage",
    ("POST", "/v1/partner/guess"): "partner:manage",
}

_PARAM = re.compile(r"\{[^}]+\}")


def _routes(app) -> list[tuple[str, str]]:
    out = []
    for path, ops in app.openapi()["paths"].items():
        if not path.startswith("/v1/"):
            continue
        if path.startswith("/v1/inbound/"):
            # Mail providers' webhooks: authenticated by the provider's signature, never by a bearer
            # token (tests/replies/test_inbound_webhooks.py checks them).
            continue
        for method in ops:
            if method.upper() in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                out.append((method.upper(), path))
    return sorted(out)


async def _call(http, method: str, path: str, token: str):
    # Ids that exist nowhere: past the scope check every route answers 404 or 422 without side effects.
    url = _PARAM.sub(lambda m: f"{m.group(0)[1:4]}_00000000000000000000000000", path)
    kwargs = {"headers": {"Authorization": f"Bearer {token}"}}
    if method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {}
    return await http.request(method, url, **kwargs)


async def test_scope_matrix(api, db):
    app = api._transport.app
    routes = _routes(app)
    assert len(routes) >= len(CONTRACT)
    normalized = {(m, _PARAM.sub("{}", p)) for m, p in routes}
    missing = set(CONTRACT) - normalized
    assert not missing, f"contract routes missing from the app: {sorted(missing)}"

    user = await create_user(db, f"matrix-{uuid.uuid4().hex[:8]}@example.com", tier="enterprise")
    client = await create_oauth_client(db, name="matrix", redirect_uris=[REDIRECT], owner_id=user.id)
    creds: dict[str, dict[str, str]] = {"oauth": {}, "api_key": {}}
    for scope in ALL_SCOPES:
        r = await api.post("/oauth/token", data={"grant_type": "client_credentials", "scope": scope},
                           auth=basic(client))
        if scope in FIRST_PARTY_SCOPES:
            assert r.status_code == 400 and r.json()["error"] == "invalid_scope", r.text
        else:
            assert r.status_code == 200, r.text
            creds["oauth"][scope] = r.json()["access_token"]
        creds["api_key"][scope] = (await create_api_key(db, user.id, name=scope, scopes=[scope]))[1]
    assert set(creds["oauth"]) == set(OAUTH_SCOPES)

    failures: list[str] = []
    for method, path in routes:
        unauth = await api.request(method, _PARAM.sub("x", path), json={} if method != "GET" else None)
        if unauth.status_code != 401:
            failures.append(f"{method} {path} without credentials: {unauth.status_code}")
        expected = CONTRACT.get((method, _PARAM.sub("{}", path)))
        for kind, tokens in creds.items():
            passed, needed = [], set()
            for scope, token in tokens.items():
                r = await _call(api, method, path, token)
                if r.status_code == 401:
                    failures.append(f"{method} {path} [{kind} {scope}] 401: {r.text[:200]}")
                elif r.status_code == 403:
                    body = r.json()
                    if body.get("code") != "insufficient_scope":
                        failures.append(f"{method} {path} [{kind} {scope}] 403 {body.get('code')}")
                    needed.update(body.get("required_scopes") or [])
                else:
                    passed.append(scope)
            if expected in PARTNER_SCOPES or (kind == "oauth" and expected in FIRST_PARTY_SCOPES):
                # No OAuth token can hold it: every one is refused, naming the scope.
                if passed or needed != {expected}:
                    failures.append(f"{method} {path} [oauth] passes for {passed}, 403s name {needed}")
                continue
            learned = ANY if len(passed) == len(tokens) else (passed[0] if len(passed) == 1 else None)
            if learned is None:
                failures.append(f"{method} {path} [{kind}] passes for {passed}: not one scope nor any")
            elif learned != ANY and needed != {learned}:
                failures.append(f"{method} {path} [{kind}] 403s name {needed}, but {learned} is what passes")
            if expected is not None and learned != expected:
                failures.append(f"{method} {path} [{kind}] needs {learned}, the contract says {expected}")
    assert not failures, "\n".join(failures)
