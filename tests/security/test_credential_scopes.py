"""Finding 1: managing credentials needs a first-party credential.

A ``tasks:read`` key or an OAuth access token could mint API keys, register OAuth clients and
revoke the user's other keys. Now ``/v1/api-keys`` and ``/v1/oauth/clients`` need an API key with
``account:manage`` (or a console session); OAuth tokens can never hold that scope. OAuth clients
can be read and deleted, and deleting one ends every token and grant it holds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

from codetether.accounts.service import create_api_key, create_user
from codetether.accounts.oauth_clients import create_oauth_client
from tests.oauth.conftest import (  # noqa: F401 - fixtures
    PASSWORD,
    REDIRECT,
    api,
    basic,
    confidential_client,
    get_code,
    person,
)

CREDENTIAL_CALLS = [
    ("POST", "/v1/api-keys", {"name": "escape"}),
    ("GET", "/v1/api-keys", None),
    ("DELETE", "/v1/api-keys/key_00000000000000000000000000", None),
    ("POST", "/v1/oauth/clients", {"name": "x", "redirect_uris": [REDIRECT]}),
    ("GET", "/v1/oauth/clients", None),
    ("GET", "/v1/oauth/clients/cli_00000000000000000000000000", None),
    ("DELETE", "/v1/oauth/clients/cli_00000000000000000000000000", None),
]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_read_only_key_and_oauth_token_cannot_touch_credentials(api, db, person, confidential_client):  # noqa: F811
    _row, read_key = await create_api_key(db, person.user_id, name="ro", scopes=["tasks:read"])
    r = await api.post("/oauth/token", data={"grant_type": "client_credentials", "scope": "tasks:read"},
                       auth=basic(confidential_client))
    assert r.status_code == 200, r.text
    oauth_token = r.json()["access_token"]
    # Even an OAuth token holding every scope a client can get is refused.
    r = await api.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=basic(confidential_client))
    full_oauth = r.json()["access_token"]
    assert "account:manage" not in r.json()["scope"]

    for token in (read_key, oauth_token, full_oauth):
        for method, path, body in CREDENTIAL_CALLS:
            r = await api.request(method, path, headers=bearer(token), json=body)
            assert r.status_code == 403, (method, path, r.text)
            assert r.json()["code"] == "insufficient_scope"
            assert r.json()["required_scopes"] == ["account:manage"]

    # The read-only key could revoke the full-scope key before; now it cannot.
    full = (await api.get("/v1/api-keys", headers=person.headers)).json()["data"]
    target = next(k for k in full if "account:manage" in k["scopes"])
    r = await api.delete(f"/v1/api-keys/{target['id']}", headers=bearer(read_key))
    assert r.status_code == 403
    assert (await api.get("/v1/automation/me", headers=person.headers)).status_code == 200


async def test_oauth_clients_can_never_get_account_manage(api, db, person, confidential_client):  # noqa: F811
    r = await api.post("/oauth/token", data={"grant_type": "client_credentials", "scope": "account:manage"},
                       auth=basic(confidential_client))
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    r = await api.post("/v1/oauth/clients", headers=person.headers,
                       json={"name": "x", "redirect_uris": [REDIRECT], "scopes": ["tasks:read", "account:manage"]})
    assert r.status_code == 422 and r.json()["code"] == "invalid_oauth_client"
    meta = (await api.get("/.well-known/oauth-authorization-server")).json()
    assert "account:manage" not in meta["scopes_supported"]
    # A consent request for it is refused at the redirect.
    r = await api.get("/oauth/authorize", params={"response_type": "code", "client_id": confidential_client["client_id"],
                                                   "redirect_uri": REDIRECT, "scope": "account:manage", "state": "s"})
    assert r.status_code == 302 and "error=invalid_scope" in r.headers["location"]


async def test_account_manage_key_manages_clients_and_delete_revokes_everything(api, db, person):  # noqa: F811
    r = await api.post("/v1/oauth/clients", headers=person.headers,
                       json={"name": "Partner", "redirect_uris": [REDIRECT]})
    assert r.status_code == 201, r.text
    client = r.json()
    assert "account:manage" not in client["scopes"]
    cid = client["client_id"]
    assert (await api.get(f"/v1/oauth/clients/{cid}", headers=person.headers)).json()["name"] == "Partner"
    # Another user's client is 404, like a missing one.
    other = await create_user(db, f"other-{uuid.uuid4().hex[:8]}@example.com", password=PASSWORD)
    _row, other_key = await create_api_key(db, other.id)
    assert (await api.get(f"/v1/oauth/clients/{cid}", headers=bearer(other_key))).status_code == 404
    assert (await api.delete(f"/v1/oauth/clients/{cid}", headers=bearer(other_key))).status_code == 404

    # Tokens of both kinds and an unredeemed code exist.
    cc = (await api.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=basic(client))).json()
    code = await get_code(api, client, person.email)
    pair = (await api.post("/oauth/token", data={"grant_type": "authorization_code", "code": code,
                                                 "redirect_uri": REDIRECT}, auth=basic(client))).json()
    spare_code = await get_code(api, client, person.email, state="spare")
    for token in (cc["access_token"], pair["access_token"]):
        assert (await api.get("/v1/automation/me", headers=bearer(token))).status_code == 200

    r = await api.delete(f"/v1/oauth/clients/{cid}", headers=person.headers)
    assert r.status_code == 204
    assert (await api.get(f"/v1/oauth/clients/{cid}", headers=person.headers)).status_code == 404
    assert cid not in {c["client_id"] for c in (await api.get("/v1/oauth/clients", headers=person.headers)).json()["data"]}
    for token in (cc["access_token"], pair["access_token"]):
        assert (await api.get("/v1/automation/me", headers=bearer(token))).status_code == 401
    r = await api.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]},
                       auth=basic(client))
    assert r.status_code in (400, 401)
    r = await api.post("/oauth/token", data={"grant_type": "authorization_code", "code": spare_code,
                                             "redirect_uri": REDIRECT}, auth=basic(client))
    assert r.status_code in (400, 401)


async def test_account_manage_key_creates_keys_and_defaults_to_its_scopes(api, db, person):  # noqa: F811
    r = await api.post("/v1/api-keys", headers=person.headers, json={"name": "all"})
    assert r.status_code == 201, r.text
    assert "account:manage" in r.json()["scopes"]
    # A key without account:manage cannot grant it either.
    _row, limited = await create_api_key(db, person.user_id, scopes=["tasks:read", "account:manage"])
    r = await api.post("/v1/api-keys", headers=bearer(limited), json={"scopes": ["tasks:write"]})
    assert r.status_code == 403


def _cli(args: list[str], data_dir, database_url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CODETETHER_DATA_DIR": str(data_dir), "CODETETHER_DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "codetether.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


async def test_cli_keys_default_to_every_scope_and_oauth_clients_list_delete(api, db, tmp_path, database_url):  # noqa: F811
    email = f"cli-{uuid.uuid4().hex[:8]}@example.com"
    user = await create_user(db, email)
    r = _cli(["keys", "create", "--user", email], tmp_path, database_url)
    assert r.returncode == 0, r.stderr
    key = r.stdout.strip()
    me = (await api.get("/v1/automation/me", headers=bearer(key))).json()
    assert "account:manage" in me["scopes"]
    assert (await api.get("/v1/api-keys", headers=bearer(key))).status_code == 200

    client = await create_oauth_client(db, name="cli-made", redirect_uris=[REDIRECT], owner_id=user.id)
    token = (await api.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=basic(client))).json()
    r = _cli(["oauth-clients", "list", "--owner", email], tmp_path, database_url)
    assert r.returncode == 0, r.stderr
    assert [c["client_id"] for c in json.loads(r.stdout)] == [client["client_id"]]
    r = _cli(["oauth-clients", "delete", client["client_id"]], tmp_path, database_url)
    assert r.returncode == 0, r.stderr
    assert (await api.get("/v1/automation/me", headers=bearer(token["access_token"]))).status_code == 401
    r = _cli(["oauth-clients", "list", "--owner", email], tmp_path, database_url)
    assert json.loads(r.stdout) == []
    r = _cli(["oauth-clients", "delete", client["client_id"]], tmp_path, database_url)
    assert r.returncode == 1 and "no OAuth client" in r.stderr
