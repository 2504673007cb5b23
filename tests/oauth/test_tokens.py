"""client_credentials, revocation (RFC 7009), introspection (RFC 7662), client registration."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

from codetether.accounts.oauth_clients import create_oauth_client
from tests.oauth.conftest import REDIRECT, basic, get_code, pkce_pair


async def _cc_token(api, client, scope: str | None = None) -> dict:
    data = {"grant_type": "client_credentials"}
    if scope:
        data["scope"] = scope
    r = await api.post("/oauth/token", data=data, auth=basic(client))
    assert r.status_code == 200, r.text
    return r.json()


async def test_client_credentials_reads_tasks_but_cannot_create(api, person, confidential_client):
    tok = await _cc_token(api, confidential_client, "tasks:read")
    assert "refresh_token" not in tok and tok["scope"] == "tasks:read"
    h = {"Authorization": f"Bearer {tok['access_token']}"}
    me = await api.get("/v1/automation/me", headers=h)
    assert me.status_code == 200 and me.json()["user_id"] == person.user_id
    assert me.json()["scopes"] == ["tasks:read"] and me.json()["auth_method"] == "oauth"
    r = await api.get("/v1/automation/tasks", headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == []
    r = await api.post("/v1/automation/tasks", headers=h, json={"title": "t", "prompt": "hello"})
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "insufficient_scope"


async def test_client_credentials_refusals(api, db, person, public_client, confidential_client):
    # a public client has no credentials to present
    r = await api.post("/oauth/token", data={"grant_type": "client_credentials",
                                             "client_id": public_client["client_id"]})
    assert r.status_code in (400, 401) and r.json()["error"] in ("invalid_client", "unauthorized_client")
    # a wrong secret
    r = await api.post("/oauth/token", data={"grant_type": "client_credentials"},
                       auth=(confidential_client["client_id"], "cts_wrong"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert r.headers["www-authenticate"].startswith("Basic")
    # a client without an owner has nobody to act for
    ownerless = await create_oauth_client(db, name="no owner", redirect_uris=[REDIRECT])
    r = await api.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=basic(ownerless))
    assert r.status_code == 400 and r.json()["error"] == "unauthorized_client"
    # scopes beyond the client's registration
    narrow = await create_oauth_client(db, name="narrow", redirect_uris=[REDIRECT], owner_email=person.email,
                                       scopes="tasks:read")
    r = await api.post("/oauth/token", data={"grant_type": "client_credentials", "scope": "tasks:write"},
                       auth=basic(narrow))
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    # unsupported grants
    r = await api.post("/oauth/token", data={"grant_type": "password", "username": person.email, "password": "x"},
                       auth=basic(confidential_client))
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"


async def test_revoked_access_token_is_refused_at_once(api, person, confidential_client):
    code = await get_code(api, confidential_client, person.email)
    tok = (await api.post("/oauth/token", data={"grant_type": "authorization_code", "code": code,
                                                "redirect_uri": REDIRECT}, auth=basic(confidential_client))).json()
    h = {"Authorization": f"Bearer {tok['access_token']}"}
    assert (await api.get("/v1/automation/me", headers=h)).status_code == 200
    r = await api.post("/oauth/revoke", data={"token": tok["access_token"], "token_type_hint": "access_token"},
                       auth=basic(confidential_client))
    assert r.status_code == 200
    r = await api.get("/v1/automation/me", headers=h)
    assert r.status_code == 401 and r.json()["code"] == "unauthenticated"
    # the refresh token of the same grant is gone too
    r = await api.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]},
                       auth=basic(confidential_client))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # revoking an unknown token is not an error (RFC 7009 §2.2)
    r = await api.post("/oauth/revoke", data={"token": "cta_unknown"}, auth=basic(confidential_client))
    assert r.status_code == 200


async def test_public_client_revokes_its_refresh_token(api, person, public_client):
    verifier, challenge = pkce_pair()
    code = await get_code(api, public_client, person.email, challenge=challenge)
    tok = (await api.post("/oauth/token", data={"grant_type": "authorization_code", "code": code,
                                                "redirect_uri": REDIRECT, "client_id": public_client["client_id"],
                                                "code_verifier": verifier})).json()
    r = await api.post("/oauth/revoke", data={"token": tok["refresh_token"], "token_type_hint": "refresh_token",
                                              "client_id": public_client["client_id"]})
    assert r.status_code == 200
    r = await api.get("/v1/automation/me", headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert r.status_code == 401


async def test_another_client_cannot_revoke_a_token(api, db, person, confidential_client):
    other = await create_oauth_client(db, name="other", redirect_uris=[REDIRECT], owner_email=person.email)
    tok = await _cc_token(api, confidential_client, "tasks:read")
    r = await api.post("/oauth/revoke", data={"token": tok["access_token"]}, auth=basic(other))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = await api.get("/v1/automation/me", headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert r.status_code == 200


async def test_introspection(api, db, person, confidential_client, public_client):
    tok = await _cc_token(api, confidential_client, "tasks:read tasks:write")
    r = await api.post("/oauth/introspect", data={"token": tok["access_token"]}, auth=basic(confidential_client))
    assert r.status_code == 200
    body = r.json()
    assert body["active"] is True and body["scope"] == "tasks:read tasks:write"
    assert body["client_id"] == confidential_client["client_id"] and body["sub"] == person.user_id
    assert body["username"] == person.email and body["exp"] > body["iat"] and body["token_type"] == "Bearer"
    # unauthenticated or public callers may not introspect
    r = await api.post("/oauth/introspect", data={"token": tok["access_token"]})
    assert r.status_code in (400, 401) and r.json()["error"] == "invalid_client"
    r = await api.post("/oauth/introspect", data={"token": tok["access_token"], "client_id": public_client["client_id"]})
    assert r.status_code in (400, 401) and r.json()["error"] == "invalid_client"
    # another client learns nothing
    other = await create_oauth_client(db, name="other", redirect_uris=[REDIRECT], owner_email=person.email)
    r = await api.post("/oauth/introspect", data={"token": tok["access_token"]}, auth=basic(other))
    assert r.json() == {"active": False}
    # unknown and revoked tokens are inactive
    r = await api.post("/oauth/introspect", data={"token": "cta_nothing"}, auth=basic(confidential_client))
    assert r.json() == {"active": False}
    await api.post("/oauth/revoke", data={"token": tok["access_token"]}, auth=basic(confidential_client))
    r = await api.post("/oauth/introspect", data={"token": tok["access_token"]}, auth=basic(confidential_client))
    assert r.json() == {"active": False}


async def test_register_clients_over_the_api(api, person, make_user):
    h = person.headers
    r = await api.post("/v1/oauth/clients", headers=h, json={"name": "My Zap", "redirect_uris": [
        "https://zapier.com/dashboard/auth/oauth/return/App123CLIAPI/"]})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["client_id"].startswith("cli_") and created["client_secret"].startswith("cts_")
    assert created["owner_id"] == person.user_id and created["public"] is False
    r = await api.post("/v1/oauth/clients", headers=h, json={"name": "CLI", "public": True,
                                                              "redirect_uris": ["http://127.0.0.1:8765/cb"]})
    assert r.status_code == 201 and r.json()["client_secret"] is None
    listed = await api.get("/v1/oauth/clients", headers=h)
    assert listed.status_code == 200
    assert {c["name"] for c in listed.json()["data"]} == {"My Zap", "CLI"}
    assert all("client_secret" not in c for c in listed.json()["data"])
    # bad redirect URIs and unknown fields are 422; scopes beyond the caller's are 403
    r = await api.post("/v1/oauth/clients", headers=h, json={"name": "x", "redirect_uris": ["http://evil.example/cb"]})
    assert r.status_code == 422 and r.json()["code"] == "invalid_oauth_client"
    r = await api.post("/v1/oauth/clients", headers=h, json={"name": "x", "redirect_uris": ["https://a.example/#f"]})
    assert r.status_code == 422
    reader = await make_user(scopes=["tasks:read"])
    r = await api.post("/v1/oauth/clients", headers=reader.headers, json={
        "name": "x", "redirect_uris": ["https://a.example/cb"], "scopes": ["tasks:write"]})
    assert r.status_code == 403 and r.json()["code"] == "insufficient_scope"
    r = await api.post("/v1/oauth/clients", json={"name": "x", "redirect_uris": ["https://a.example/cb"]})
    assert r.status_code == 401


async def test_cli_registers_clients(database_url, db, person, tmp_path):
    env = {**os.environ, "CODETETHER_DATABASE_URL": database_url, "CODETETHER_DATA_DIR": str(tmp_path)}
    cmd = [sys.executable, "-m", "codetether.cli", "oauth-clients", "create", "--name", "Zapier",
           "--redirect-uri", "https://zapier.com/dashboard/auth/oauth/return/App1CLIAPI/", "--owner", person.email]
    out = await asyncio.to_thread(subprocess.run, cmd, check=False, env=env, capture_output=True, text=True,
                                  timeout=120)
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["client_id"].startswith("cli_") and body["client_secret"].startswith("cts_")
    public = await create_oauth_client(db, name="Zapier", redirect_uris=["http://127.0.0.1:5000/cb"], public=True)
    assert "client_secret" not in public and public["public"] is True
    bad = await asyncio.to_thread(subprocess.run, [*cmd[:7], "--redirect-uri", "http://example.com/cb", "--public"],
                                  check=False, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "https" in bad.stderr and bad.stdout == ""
