"""The authorization-code flow over HTTP: PKCE, exact redirect URIs, single-use codes, refresh
rotation with reuse detection, and the RFC 9700 refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from codetether.core.ids import utcnow
from codetether.core.models import OAuthAuthorizationCode
from codetether.accounts.credentials import hash_token
from tests.conftest import make_settings
from tests.oauth.conftest import (
    REDIRECT,
    basic,
    csrf_of,
    get_code,
    pkce_pair,
    query_of,
    sign_in_and_consent,
)


@pytest.fixture
def settings(temporal_address, database_url, tmp_path):
    # No refresh grace period here: a rotated refresh token that comes back is a reuse at once.
    # Both sides of the grace window are in test_refresh_grace.py.
    return make_settings(temporal_address, database_url, tmp_path, oauth_refresh_grace_seconds=0)


async def test_metadata_document(api):
    r = await api.get("/.well-known/oauth-authorization-server")
    assert r.status_code == 200
    meta = r.json()
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_endpoint"].endswith("/oauth/authorize")
    assert meta["token_endpoint"].endswith("/oauth/token")
    assert meta["revocation_endpoint"].endswith("/oauth/revoke")
    assert meta["introspection_endpoint"].endswith("/oauth/introspect")
    assert meta["response_types_supported"] == ["code"]
    assert set(meta["grant_types_supported"]) == {"authorization_code", "refresh_token", "client_credentials",
                                                  "urn:ietf:params:oauth:grant-type:token-exchange"}
    assert "tasks:read" in meta["scopes_supported"]


async def test_public_client_code_pkce_refresh_rotation_and_reuse(api, person, public_client):
    verifier, challenge = pkce_pair()
    code = await get_code(api, public_client, person.email, challenge=challenge)
    r = await api.post("/oauth/token", data={"grant_type": "authorization_code", "code": code,
                                             "redirect_uri": REDIRECT, "client_id": public_client["client_id"],
                                             "code_verifier": verifier})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    tok = r.json()
    assert tok["token_type"] == "Bearer" and tok["expires_in"] == 3600
    assert tok["scope"] == "tasks:read tasks:write"
    me = await api.get("/v1/automation/me", headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert me.status_code == 200, me.text
    assert me.json()["auth_method"] == "oauth"
    assert me.json()["email"] == person.email
    assert me.json()["scopes"] == ["tasks:read", "tasks:write"]

    # Refresh rotates: a new access and a new refresh token.
    r = await api.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"],
                                             "client_id": public_client["client_id"]})
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["refresh_token"] != tok["refresh_token"] and new["access_token"] != tok["access_token"]
    assert new["scope"] == "tasks:read tasks:write"
    ok = await api.get("/v1/automation/me", headers={"Authorization": f"Bearer {new['access_token']}"})
    assert ok.status_code == 200

    # Replaying the rotated refresh token fails and revokes the whole family.
    r = await api.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"],
                                             "client_id": public_client["client_id"]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    for access in (tok["access_token"], new["access_token"]):
        gone = await api.get("/v1/automation/me", headers={"Authorization": f"Bearer {access}"})
        assert gone.status_code == 401
        assert gone.headers["www-authenticate"].startswith("Bearer")
    r = await api.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": new["refresh_token"],
                                             "client_id": public_client["client_id"]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


async def test_code_is_single_use_and_reuse_revokes_its_tokens(api, person, confidential_client):
    code = await get_code(api, confidential_client, person.email)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    first = await api.post("/oauth/token", data=data, auth=basic(confidential_client))
    assert first.status_code == 200, first.text
    access = first.json()["access_token"]
    assert (await api.get("/v1/automation/me", headers={"Authorization": f"Bearer {access}"})).status_code == 200
    again = await api.post("/oauth/token", data=data, auth=basic(confidential_client))
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert (await api.get("/v1/automation/me", headers={"Authorization": f"Bearer {access}"})).status_code == 401
    r = await api.post("/oauth/token", data={"grant_type": "refresh_token",
                                             "refresh_token": first.json()["refresh_token"]},
                       auth=basic(confidential_client))
    assert r.status_code == 400


async def test_code_bound_to_client_and_redirect_uri_and_expires(api, db, person, confidential_client,
                                                                  public_client):
    code = await get_code(api, confidential_client, person.email)
    # another redirect URI (even a registered-looking variant) is refused
    r = await api.post("/oauth/token", data={"grant_type": "authorization_code", "code": code,
                                             "redirect_uri": REDIRECT + "/other"}, auth=basic(confidential_client))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # another client cannot redeem it
    r = await api.post("/oauth/token", data={"grant_type": "authorization_code", "code": code,
                                             "redirect_uri": REDIRECT, "client_id": public_client["client_id"]})
    assert r.status_code == 400 and r.json()["error"] in ("invalid_grant", "invalid_request")
    # an expired code is refused
    async with db.write_session() as s:
        await s.execute(update(OAuthAuthorizationCode).where(OAuthAuthorizationCode.code_hash == hash_token(code))
                        .values(expires_at=utcnow() - timedelta(seconds=1)))
        await s.commit()
    r = await api.post("/oauth/token", data={"grant_type": "authorization_code", "code": code,
                                             "redirect_uri": REDIRECT}, auth=basic(confidential_client))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


async def test_code_lifetime_is_at_most_ten_minutes(api, db, person, confidential_client):
    code = await get_code(api, confidential_client, person.email)
    async with db.session() as s:
        row = await s.get(OAuthAuthorizationCode, hash_token(code))
    life = row.expires_at - row.created_at
    assert timedelta(0) < life <= timedelta(minutes=10)


async def test_pkce_refusals(api, person, public_client, confidential_client):
    base = {"response_type": "code", "redirect_uri": REDIRECT, "scope": "tasks:read", "state": "s1"}
    verifier, challenge = pkce_pair()

    # public client without a challenge: error sent back to the (registered) redirect URI, with state
    r = await api.get("/oauth/authorize", params={**base, "client_id": public_client["client_id"]})
    assert r.status_code == 302
    q = query_of(r.headers["location"])
    assert r.headers["location"].startswith(REDIRECT) and q["error"] == "invalid_request" and q["state"] == "s1"
    assert "code" not in q

    # plain is refused, for every client
    for client in (public_client, confidential_client):
        r = await api.get("/oauth/authorize", params={**base, "client_id": client["client_id"],
                                                      "code_challenge": verifier, "code_challenge_method": "plain"})
        assert r.status_code == 302 and query_of(r.headers["location"])["error"] == "invalid_request"
    # a challenge without a method (would mean plain) is refused
    r = await api.get("/oauth/authorize", params={**base, "client_id": public_client["client_id"],
                                                  "code_challenge": challenge})
    assert r.status_code == 302 and query_of(r.headers["location"])["error"] == "invalid_request"

    # public client: token request without the verifier, then with a wrong one
    code = await get_code(api, public_client, person.email, challenge=challenge, scope="tasks:read")
    r = await api.post("/oauth/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                             "client_id": public_client["client_id"]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    wrong, _ = pkce_pair()
    r = await api.post("/oauth/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                             "client_id": public_client["client_id"], "code_verifier": wrong})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"

    # confidential client: PKCE honoured when used...
    code = await get_code(api, confidential_client, person.email, challenge=challenge, scope="tasks:read")
    r = await api.post("/oauth/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
                       auth=basic(confidential_client))
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    # ...and a verifier without a challenge is refused (RFC 9700 §4.8.2)
    code = await get_code(api, confidential_client, person.email, scope="tasks:read")
    r = await api.post("/oauth/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                             "code_verifier": verifier}, auth=basic(confidential_client))
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


async def test_unregistered_redirect_uri_is_never_redirected_to(api, person, confidential_client):
    evil = "https://attacker.example/cb"
    variants = [evil, REDIRECT + "/extra", REDIRECT + "?x=1", REDIRECT.replace("127.0.0.1", "localhost"),
                REDIRECT.upper()]
    for uri in variants:
        params = {"response_type": "code", "client_id": confidential_client["client_id"], "redirect_uri": uri,
                  "state": "s"}
        r = await api.get("/oauth/authorize", params=params)
        assert r.status_code == 400, uri
        assert "location" not in r.headers
        assert r.headers["content-type"].startswith("text/html")
        assert "not valid" in r.text
        # the form post cannot be used to get around it either
        r = await api.post("/oauth/authorize", data={**params, "action": "approve", "csrf_token": "x"})
        assert r.status_code == 400 and "location" not in r.headers
    # unknown client, missing redirect URI: error page too
    r = await api.get("/oauth/authorize", params={"response_type": "code", "client_id": "cli_nope",
                                                  "redirect_uri": evil})
    assert r.status_code == 400 and "location" not in r.headers
    r = await api.get("/oauth/authorize", params={"response_type": "code",
                                                  "client_id": confidential_client["client_id"]})
    assert r.status_code == 400 and "location" not in r.headers


async def test_other_response_types_and_unknown_scopes_are_refused_at_the_redirect(api, confidential_client):
    base = {"client_id": confidential_client["client_id"], "redirect_uri": REDIRECT, "state": "zz"}
    r = await api.get("/oauth/authorize", params={**base, "response_type": "token"})
    assert r.status_code == 302
    q = query_of(r.headers["location"])
    assert q["error"] == "unsupported_response_type" and q["state"] == "zz"
    r = await api.get("/oauth/authorize", params={**base, "response_type": "code", "scope": "admin:everything"})
    assert r.status_code == 302 and query_of(r.headers["location"])["error"] == "invalid_scope"


async def test_deny_returns_access_denied_with_state(api, person, confidential_client):
    params = {"response_type": "code", "client_id": confidential_client["client_id"], "redirect_uri": REDIRECT,
              "scope": "tasks:read", "state": "deny-me"}
    r = await sign_in_and_consent(api, params, person.email, action="deny")
    assert r.status_code == 302
    q = query_of(r.headers["location"])
    assert q["error"] == "access_denied" and q["state"] == "deny-me" and "code" not in q


async def test_sign_in_needs_right_password_and_csrf(api, person, confidential_client):
    params = {"response_type": "code", "client_id": confidential_client["client_id"], "redirect_uri": REDIRECT,
              "scope": "tasks:read", "state": "s"}
    page = await api.get("/oauth/authorize", params=params)
    csrf = csrf_of(page.text)
    r = await api.post("/oauth/authorize", data={**params, "action": "signin", "csrf_token": csrf,
                                                 "email": person.email, "password": "wrong password"})
    assert r.status_code == 401 and "not correct" in r.text and "ct_oauth_session" not in r.headers.get("set-cookie", "")
    # a cross-site post (no matching CSRF cookie/token pair) does not sign in
    api.cookies.clear()
    r = await api.post("/oauth/authorize", data={**params, "action": "signin", "csrf_token": csrf,
                                                 "email": person.email, "password": "correct horse battery staple"})
    assert r.status_code == 400 and "ct_oauth_session" not in r.headers.get("set-cookie", "")
    # signed in, an approval without the session's CSRF token is refused and redirects nowhere
    r = await sign_in_and_consent(api, params, person.email, action="deny")
    assert r.status_code == 302
    r = await api.post("/oauth/authorize", data={**params, "action": "approve", "csrf_token": "forged"})
    assert r.status_code == 403 and "location" not in r.headers
    # pages cannot be framed
    page = await api.get("/oauth/authorize", params=params)
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


async def test_concurrent_redemptions_of_one_code_or_refresh_token(api, person, confidential_client):
    import asyncio

    code = await get_code(api, confidential_client, person.email)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    answers = await asyncio.gather(*[api.post("/oauth/token", data=data, auth=basic(confidential_client))
                                     for _ in range(4)])
    statuses = sorted(r.status_code for r in answers)
    assert statuses[0] == 200 and statuses[1:] == [400, 400, 400], statuses
    # the code was replayed, so what it issued is revoked
    winner = next(r for r in answers if r.status_code == 200).json()
    me = await api.get("/v1/automation/me", headers={"Authorization": f"Bearer {winner['access_token']}"})
    assert me.status_code == 401

    code = await get_code(api, confidential_client, person.email)
    tok = (await api.post("/oauth/token", data={**data, "code": code}, auth=basic(confidential_client))).json()
    refresh = {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]}
    answers = await asyncio.gather(*[api.post("/oauth/token", data=refresh, auth=basic(confidential_client))
                                     for _ in range(3)])
    assert sorted(r.status_code for r in answers) == [200, 400, 400]
    rotated = next(r for r in answers if r.status_code == 200).json()
    me = await api.get("/v1/automation/me", headers={"Authorization": f"Bearer {rotated['access_token']}"})
    assert me.status_code == 401
