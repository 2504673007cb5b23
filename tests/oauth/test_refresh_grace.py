"""Refresh-token rotation with a grace period, over HTTP: parallel clients refreshing at once
(Zapier runs Zaps in parallel) all get the same successor pair, never a branch of the family of
their own; a rotated token that comes back after the window revokes the family. Bad, expired and reused refresh tokens are always
``400 invalid_grant`` (a 401 would make Zapier refresh again). Confidential clients may skip PKCE."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select, update

from codetether.core.config import Settings
from codetether.core.ids import utcnow
from codetether.core.models import OAuthToken
from codetether.accounts.credentials import hash_token
from tests.oauth.conftest import REDIRECT, basic, get_code, pkce_pair, query_of

GRACE = 30  # the default of CODETETHER_OAUTH_REFRESH_GRACE_SECONDS


async def code_tokens(api: httpx.AsyncClient, client: dict, email: str) -> dict:
    code = await get_code(api, client, email)
    r = await api.post("/oauth/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
                       auth=basic(client))
    assert r.status_code == 200, r.text
    return r.json()


async def refresh(api: httpx.AsyncClient, client: dict, token: str) -> httpx.Response:
    return await api.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": token},
                          auth=basic(client))


async def me_status(api: httpx.AsyncClient, access: str) -> int:
    return (await api.get("/v1/automation/me", headers={"Authorization": f"Bearer {access}"})).status_code


async def rotated_ago(db, refresh_token: str, seconds: float) -> None:
    """Moves a rotation into the past, as if ``seconds`` had gone by since."""
    async with db.write_session() as s:
        await s.execute(
            update(OAuthToken)
            .where(OAuthToken.refresh_token_hash == hash_token(refresh_token))
            .values(rotated_at=utcnow() - timedelta(seconds=seconds))
        )
        await s.commit()


def assert_invalid_grant(r: httpx.Response) -> None:
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_grant"
    assert r.headers["content-type"].startswith("application/json")


def test_grace_default_and_environment(monkeypatch):
    monkeypatch.delenv("CODETETHER_OAUTH_REFRESH_GRACE_SECONDS", raising=False)
    assert Settings().oauth_refresh_grace_seconds == GRACE
    monkeypatch.setenv("CODETETHER_OAUTH_REFRESH_GRACE_SECONDS", "60")
    assert Settings().oauth_refresh_grace_seconds == 60


@pytest.mark.postgres
async def test_parallel_refreshes_all_get_the_same_successor(api, db, person, confidential_client):
    tok = await code_tokens(api, confidential_client, person.email)
    answers = await asyncio.gather(*[refresh(api, confidential_client, tok["refresh_token"]) for _ in range(5)])
    assert [r.status_code for r in answers] == [200] * 5, [r.text for r in answers]
    pairs = [r.json() for r in answers]
    # One successor, not five branches of the family.
    assert len({p["refresh_token"] for p in pairs}) == 1 and len({p["access_token"] for p in pairs}) == 1
    successor = pairs[0]
    assert successor["refresh_token"] != tok["refresh_token"]
    for p in pairs:
        assert p["scope"] == tok["scope"] and p["token_type"] == "Bearer" and 0 < p["expires_in"] <= 3600
    assert await me_status(api, successor["access_token"]) == 200
    async with db.session() as s:
        family = (await s.execute(select(OAuthToken.family_id).where(
            OAuthToken.access_token_hash == hash_token(tok["access_token"])))).scalar_one()
        rows = (await s.execute(select(func.count()).select_from(OAuthToken).where(
            OAuthToken.family_id == family))).scalar_one()
    assert rows == 2
    # The successor refreshes on as usual; revoking the grant ends the whole family.
    again = await refresh(api, confidential_client, successor["refresh_token"])
    assert again.status_code == 200, again.text
    last = again.json()
    r = await api.post("/oauth/revoke", data={"token": last["refresh_token"]}, auth=basic(confidential_client))
    assert r.status_code == 200
    for p in [tok, successor, last]:
        assert await me_status(api, p["access_token"]) == 401


async def test_reuse_inside_the_window_gives_the_same_successor(api, db, person, public_client):
    verifier, challenge = pkce_pair()
    code = await get_code(api, public_client, person.email, challenge=challenge)
    r = await api.post("/oauth/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                             "client_id": public_client["client_id"], "code_verifier": verifier})
    tok = r.json()
    data = {"grant_type": "refresh_token", "client_id": public_client["client_id"]}
    first = (await api.post("/oauth/token", data={**data, "refresh_token": tok["refresh_token"]})).json()
    # The same, just-rotated token again and again, well inside the window (as if 25 s later).
    await rotated_ago(db, tok["refresh_token"], GRACE - 5)
    for _ in range(3):
        r = await api.post("/oauth/token", data={**data, "refresh_token": tok["refresh_token"]})
        assert r.status_code == 200, r.text
        again = r.json()
        assert (again["access_token"], again["refresh_token"]) == (first["access_token"], first["refresh_token"])
    assert await me_status(api, first["access_token"]) == 200
    async with db.session() as s:
        rows = (await s.execute(select(OAuthToken.family_id).where(OAuthToken.family_id.in_(
            select(OAuthToken.family_id).where(OAuthToken.access_token_hash == hash_token(tok["access_token"])))
        ))).scalars().all()
    assert len(rows) == 2  # the original and its one successor


async def test_reuse_after_the_window_revokes_the_family(api, db, person, confidential_client):
    tok = await code_tokens(api, confidential_client, person.email)
    r = await refresh(api, confidential_client, tok["refresh_token"])
    new = r.json()
    await rotated_ago(db, tok["refresh_token"], GRACE + 1)
    assert_invalid_grant(await refresh(api, confidential_client, tok["refresh_token"]))
    for access in (tok["access_token"], new["access_token"]):
        assert await me_status(api, access) == 401
    assert_invalid_grant(await refresh(api, confidential_client, new["refresh_token"]))
    # And the old token stays refused (never a 401).
    assert_invalid_grant(await refresh(api, confidential_client, tok["refresh_token"]))


async def test_bad_expired_revoked_and_foreign_refresh_tokens_are_400_invalid_grant(
    api, db, person, confidential_client, public_client
):
    assert_invalid_grant(await refresh(api, confidential_client, "ctr_not-a-token"))
    assert_invalid_grant(await refresh(api, confidential_client, ""))
    tok = await code_tokens(api, confidential_client, person.email)
    # Another client presenting it.
    r = await api.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"],
                                             "client_id": public_client["client_id"]})
    assert_invalid_grant(r)
    # Expired.
    async with db.write_session() as s:
        await s.execute(
            update(OAuthToken)
            .where(OAuthToken.refresh_token_hash == hash_token(tok["refresh_token"]))
            .values(refresh_expires_at=utcnow() - timedelta(seconds=1))
        )
        await s.commit()
    assert_invalid_grant(await refresh(api, confidential_client, tok["refresh_token"]))
    # Revoked (RFC 7009), even inside what would be the grace window of a rotation.
    tok = await code_tokens(api, confidential_client, person.email)
    await refresh(api, confidential_client, tok["refresh_token"])
    r = await api.post("/oauth/revoke", data={"token": tok["refresh_token"]}, auth=basic(confidential_client))
    assert r.status_code == 200
    assert_invalid_grant(await refresh(api, confidential_client, tok["refresh_token"]))


async def test_confidential_clients_may_skip_pkce_public_clients_may_not(api, person, confidential_client, public_client):
    tok = await code_tokens(api, confidential_client, person.email)  # no code_challenge anywhere
    assert await me_status(api, tok["access_token"]) == 200
    r = await api.get("/oauth/authorize", params={
        "response_type": "code", "client_id": public_client["client_id"], "redirect_uri": REDIRECT,
        "scope": "tasks:read", "state": "s"})
    assert r.status_code == 302 and query_of(r.headers["location"])["error"] == "invalid_request"
