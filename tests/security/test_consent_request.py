"""Finding 9, consent: the consent POST trusted its posted fields.

A widened ``scope`` (up to the client's set) or a swapped ``code_challenge`` posted with the
consent form was accepted. The authorization request is now stored server-side when the consent
page is shown and the form approves it by id: posted OAuth fields change nothing, an id works once
and only for the sign-in session that saw the page.
"""

from __future__ import annotations

import httpx

from tests.oauth.conftest import (  # noqa: F401 - fixtures
    PASSWORD,
    REDIRECT,
    api,
    csrf_of,
    person,
    pkce_pair,
    public_client,
    query_of,
    request_id_of,
)


async def consent_page(http, params: dict, email: str) -> httpx.Response:
    r = await http.get("/oauth/authorize", params=params)
    if "is asking to" not in r.text:
        r = await http.post("/oauth/authorize", data={**params, "action": "signin", "csrf_token": csrf_of(r.text),
                                                     "email": email, "password": PASSWORD})
        assert r.status_code == 303, r.text
        r = await http.get(r.headers["location"])
    assert r.status_code == 200 and "is asking to" in r.text, r.text
    return r


async def test_tampered_consent_post_changes_nothing(api, person, public_client):  # noqa: F811
    verifier, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": public_client["client_id"], "redirect_uri": REDIRECT,
              "scope": "tasks:read", "state": "st", "code_challenge": challenge, "code_challenge_method": "S256"}
    page = await consent_page(api, params, person.email)
    assert "code_challenge" not in page.text  # the form carries only the request id
    attacker_verifier, attacker_challenge = pkce_pair()
    tampered = {**params, "scope": "tasks:read tasks:write messages:write webhooks:manage",
                "code_challenge": attacker_challenge, "redirect_uri": REDIRECT, "state": "other"}
    r = await api.post("/oauth/authorize", data={**tampered, "action": "approve", "csrf_token": csrf_of(page.text),
                                                 "request_id": request_id_of(page.text)})
    assert r.status_code == 302, r.text
    q = query_of(r.headers["location"])
    assert q["state"] == "st"
    token_form = {"grant_type": "authorization_code", "code": q["code"], "redirect_uri": REDIRECT,
                  "client_id": public_client["client_id"]}
    # The swapped challenge was not used: the attacker's verifier fails...
    bad = await api.post("/oauth/token", data={**token_form, "code_verifier": attacker_verifier})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    # ...and the one shown on the page, with the scope shown, is what the code carries.
    good = await api.post("/oauth/token", data={**token_form, "code_verifier": verifier})
    assert good.status_code == 200, good.text
    assert good.json()["scope"] == "tasks:read"


async def test_approved_scope_is_the_one_shown(api, person, public_client):  # noqa: F811
    verifier, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": public_client["client_id"], "redirect_uri": REDIRECT,
              "scope": "tasks:read", "state": "st", "code_challenge": challenge, "code_challenge_method": "S256"}
    page = await consent_page(api, params, person.email)
    r = await api.post("/oauth/authorize", data={
        **params, "scope": "tasks:read tasks:write webhooks:manage", "action": "approve",
        "csrf_token": csrf_of(page.text), "request_id": request_id_of(page.text)})
    q = query_of(r.headers["location"])
    tok = await api.post("/oauth/token", data={"grant_type": "authorization_code", "code": q["code"],
                                               "redirect_uri": REDIRECT, "client_id": public_client["client_id"],
                                               "code_verifier": verifier})
    assert tok.status_code == 200, tok.text
    assert tok.json()["scope"] == "tasks:read"
    me = await api.get("/v1/automation/me", headers={"Authorization": f"Bearer {tok.json()['access_token']}"})
    assert me.json()["scopes"] == ["tasks:read"]


async def test_request_id_is_single_use_and_bound_to_the_session(api, person, public_client):  # noqa: F811
    _verifier, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": public_client["client_id"], "redirect_uri": REDIRECT,
              "scope": "tasks:read", "state": "st", "code_challenge": challenge, "code_challenge_method": "S256"}
    page = await consent_page(api, params, person.email)
    form = {"action": "approve", "csrf_token": csrf_of(page.text), "request_id": request_id_of(page.text)}
    assert (await api.post("/oauth/authorize", data=form)).status_code == 302
    again = await api.post("/oauth/authorize", data=form)
    assert again.status_code == 400 and "location" not in again.headers
    # No request id (a form built from posted parameters alone) is refused.
    r = await api.post("/oauth/authorize", data={**params, "action": "approve", "csrf_token": form["csrf_token"]})
    assert r.status_code == 400 and "location" not in r.headers

    # Another browser signed in as the same user cannot answer this browser's request.
    page = await consent_page(api, params, person.email)
    other = httpx.AsyncClient(transport=api._transport, base_url=str(api.base_url))
    async with other:
        other_page = await consent_page(other, params, person.email)
        r = await other.post("/oauth/authorize", data={"action": "approve", "csrf_token": csrf_of(other_page.text),
                                                       "request_id": request_id_of(page.text)})
        assert r.status_code == 403 and "location" not in r.headers
