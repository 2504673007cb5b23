"""Scoped API keys (/v1/api-keys) and the opt-in, deprecated ``?api_key=`` query-string keys."""

from __future__ import annotations

import pytest_asyncio

from tests.conftest import make_settings, running_stack


@pytest_asyncio.fixture
async def query_key_api(temporal_address, database_url, tmp_path, temporal_env, db):
    settings = make_settings(temporal_address, database_url, tmp_path, allow_query_api_key=True)
    async with running_stack(settings, temporal_env.client, db, worker=False) as s:
        yield s.http


async def test_query_key_refused_by_default(api, person):
    r = await api.get("/v1/automation/me", params={"api_key": person.key})
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "deprecation" not in r.headers


async def test_query_key_accepted_when_enabled_with_deprecation_headers(query_key_api, person):
    r = await query_key_api.get("/v1/automation/me", params={"api_key": person.key})
    assert r.status_code == 200, r.text
    assert r.json()["email"] == person.email
    assert r.headers["deprecation"].startswith("@")
    assert 'rel="deprecation"' in r.headers["link"]
    assert r.headers["warning"].startswith("299 ")
    # the header form carries no deprecation notice
    r = await query_key_api.get("/v1/automation/me", headers=person.headers)
    assert r.status_code == 200 and "deprecation" not in r.headers
    # a bad query key is still a 401
    r = await query_key_api.get("/v1/automation/me", params={"api_key": "ct_nope"})
    assert r.status_code == 401


async def test_api_keys_lifecycle_and_immediate_revocation(api, person):
    r = await api.post("/v1/api-keys", headers=person.headers, json={"name": "zapier", "scopes": ["tasks:read"]})
    assert r.status_code == 201, r.text
    created = r.json()
    key = created["key"]
    assert key.startswith("ct_") and created["prefix"] == key[:10] and created["scopes"] == ["tasks:read"]
    h = {"Authorization": f"Bearer {key}"}
    me = await api.get("/v1/automation/me", headers=h)
    assert me.status_code == 200 and me.json()["scopes"] == ["tasks:read"] and me.json()["auth_method"] == "api_key"
    assert (await api.post("/v1/automation/tasks", headers=h, json={"title": "t", "prompt": "p"})).status_code == 403
    listed = (await api.get("/v1/api-keys", headers=person.headers)).json()["data"]
    row = next(k for k in listed if k["id"] == created["id"])
    assert set(row) >= {"id", "name", "prefix", "scopes", "created_at", "last_used_at"}
    assert "key" not in row and row["name"] == "zapier" and row["last_used_at"] is not None
    r = await api.delete(f"/v1/api-keys/{created['id']}", headers=person.headers)
    assert r.status_code == 204
    assert (await api.get("/v1/automation/me", headers=h)).status_code == 401
    assert created["id"] not in {k["id"] for k in (await api.get("/v1/api-keys", headers=person.headers)).json()["data"]}
    # a key cannot grant more than the credential making it
    r = await api.post("/v1/api-keys", headers=h, json={"name": "x"})
    assert r.status_code == 401


async def test_oauth_tokens_are_never_taken_from_the_query_string(query_key_api, db, person):
    from codetether.accounts.oauth_clients import create_oauth_client
    from tests.oauth.conftest import REDIRECT

    client = await create_oauth_client(db, name="q", redirect_uris=[REDIRECT], owner_email=person.email)
    r = await query_key_api.post("/oauth/token", data={"grant_type": "client_credentials"},
                                 auth=(client["client_id"], client["client_secret"]))
    access = r.json()["access_token"]
    assert (await query_key_api.get("/v1/automation/me", headers={"Authorization": f"Bearer {access}"})).status_code == 200
    r = await query_key_api.get("/v1/automation/me", params={"api_key": access})
    assert r.status_code == 401 and "deprecation" not in r.headers
