"""A dynamically registered client names itself, so "Zapier" may be anyone: wherever its name is
shown (the sign-in and consent pages, the console's connected apps) it is marked as self-registered
and unverified. Clients registered by a signed-in owner are not marked."""

from __future__ import annotations

import httpx
import pytest

from codetether.accounts.grants import list_grants
from tests.conftest import make_settings
from tests.oauth.conftest import PASSWORD, REDIRECT, csrf_of, pkce_pair, query_of, request_id_of


@pytest.fixture
def settings(temporal_address, database_url, tmp_path):
    return make_settings(temporal_address, database_url, tmp_path, oauth_dynamic_registration=True,
                         rate_limit_ip_per_minute=100_000)


async def _walk(api: httpx.AsyncClient, client_id: str, email: str) -> tuple[str, str]:
    """Sign-in page, consent page (both returned), approve, and redeem the code (the grant)."""
    verifier, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": "tasks:read",
              "state": "s", "code_challenge": challenge, "code_challenge_method": "S256"}
    signin = await api.get("/oauth/authorize", params=params)
    assert signin.status_code == 200 and "Sign in" in signin.text
    r = await api.post("/oauth/authorize", data={**params, "action": "signin", "csrf_token": csrf_of(signin.text),
                                                 "email": email, "password": PASSWORD})
    consent = await api.get(r.headers["location"])
    assert "is asking to" in consent.text
    r = await api.post("/oauth/authorize", data={**params, "action": "approve", "csrf_token": csrf_of(consent.text),
                                                 "request_id": request_id_of(consent.text)})
    code = query_of(r.headers["location"])["code"]
    r = await api.post("/oauth/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                             "client_id": client_id, "code_verifier": verifier})
    assert r.status_code == 200, r.text
    return signin.text, consent.text


async def test_a_self_registered_zapier_is_marked_unverified(api, person, db):
    r = await api.post("/oauth/register", json={"redirect_uris": [REDIRECT], "client_name": "Zapier"})
    assert r.status_code == 201, r.text
    client_id = r.json()["client_id"]
    signin, consent = await _walk(api, client_id, person.email)
    for page in (signin, consent):
        assert "id=unverified-client" in page and "id=unverified-notice" in page
    [grant] = [g for g in await list_grants(db, person.user_id) if g.client_id == client_id]
    assert grant.client_name == "Zapier" and grant.self_registered is True


async def test_an_owner_registered_client_is_not_marked(api, person, db, public_client):
    signin, consent = await _walk(api, public_client["client_id"], person.email)
    for page in (signin, consent):
        assert "id=unverified-client" not in page and "id=unverified-notice" not in page
    [grant] = [g for g in await list_grants(db, person.user_id) if g.client_id == public_client["client_id"]]
    assert grant.self_registered is False
