"""Embed sessions through the real API (CONTRACT §14 Embed): ``POST /v1/partner/embed_sessions``
gives a client secret that expires within 15 minutes, is stored hashed, acts for its end user only
with the task scopes and caps the cost of the tasks it creates; another partner's end user is 404;
an expired or unknown secret is 401."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from codetether.accounts.credentials import hash_token
from codetether.core.ids import parse_iso, utcnow
from codetether.core.models import PartnerEmbedSession
from tests.partners.conftest import (
    client_credentials,
    embed_session,
    exchanged_end_user,
)

SESSIONS = "/v1/partner/embed_sessions"
TASKS = "/v1/automation/tasks"


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def problem(r, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["code"] == code, r.json()


async def test_a_session_secret_acts_for_its_end_user_only(api, db, make_partner):
    acme = await make_partner()
    acme.token = await client_credentials(api, acme)
    ada = await exchanged_end_user(api, acme, "ada")
    bob = await exchanged_end_user(api, acme, "bob")

    before = utcnow()
    r = await api.post(SESSIONS, json={"end_user_id": ada, "max_cost_usd": 0.5}, headers=acme.headers)
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    session = r.json()
    secret = session["client_secret"]
    assert secret.startswith(f"ctes_{session['session_id']}.") and session["session_id"].startswith("emb_")
    expires = parse_iso(session["expires_at"])
    assert timedelta(minutes=14) < expires - before <= timedelta(minutes=15, seconds=1)
    assert session["end_user_id"] == ada and session["max_cost_usd"] == 0.5
    async with db.session() as s:
        row = (await s.execute(select(PartnerEmbedSession).where(
            PartnerEmbedSession.id == session["session_id"]))).scalar_one()
    assert row.secret_hash == hash_token(secret) and secret not in row.secret_hash

    info = await api.get("/embed/v1/session", headers=bearer(secret))
    assert info.status_code == 200, info.text
    assert info.json()["end_user_id"] == ada and info.json()["expires_at"] == session["expires_at"]

    # Tasks created with the secret belong to the end user and carry the session's cost cap.
    created = []
    for asked, capped in ((None, 0.5), (0.2, 0.2), (5.0, 0.5)):
        body = {"title": "Embedded", "description": "hello"}
        if asked is not None:
            body["max_cost_usd"] = asked
        r = await api.post(TASKS, json=body, headers=bearer(secret))
        assert r.status_code == 201, r.text
        assert r.json()["max_cost_usd"] == capped
        created.append(r.json()["task_id"])
    r = await api.post("/v1/automation/messages", json={"message": "a new conversation"}, headers=bearer(secret))
    assert r.status_code == 201 and r.json()["max_cost_usd"] == 0.5, r.text
    created.append(r.json()["task_id"])

    # The partner acting for ada sees them; bob's task is invisible to ada's secret.
    acting = await api.get(TASKS, headers=acme.acting(ada))
    assert {t["task_id"] for t in acting.json()["data"]} == set(created)
    r = await api.post(TASKS, json={"title": "Bob's", "description": "private"}, headers=acme.acting(bob))
    assert r.status_code == 201, r.text
    bobs = r.json()["task_id"]
    problem(await api.get(f"{TASKS}/{bobs}", headers=bearer(secret)), 404, "task_not_found")
    problem(await api.get(f"{TASKS}/{bobs}/events", headers=bearer(secret)), 404, "task_not_found")
    listed = await api.get(TASKS, headers=bearer(secret))
    assert {t["task_id"] for t in listed.json()["data"]} == set(created)

    # Task scopes only: no partner management, no acting for someone else, no credentials.
    problem(await api.get("/v1/partner/end_users", headers=bearer(secret)), 403, "insufficient_scope")
    problem(await api.post(SESSIONS, json={"end_user_id": ada}, headers=bearer(secret)), 403, "insufficient_scope")
    problem(await api.get(TASKS, headers={**bearer(secret), "CodeTether-End-User": bob}), 403,
            "end_user_header_not_allowed")
    assert (await api.get("/v1/api-keys", headers=bearer(secret))).status_code == 403


async def test_another_partners_end_user_is_not_found(api, make_partner):
    acme, other = await make_partner(), await make_partner()
    acme.token, other.token = await client_credentials(api, acme), await client_credentials(api, other)
    ada = await exchanged_end_user(api, acme, "ada")

    problem(await api.post(SESSIONS, json={"end_user_id": ada}, headers=other.headers), 404, "end_user_not_found")
    problem(await api.post(SESSIONS, json={"end_user_id": "eu_0000000000"}, headers=acme.headers), 404,
            "end_user_not_found")
    # Only the partner's own client credentials token may ask (not an end user's token, not anonymous).
    problem(await api.post(SESSIONS, json={"end_user_id": ada}, headers=acme.acting(ada)), 403, "insufficient_scope")
    assert (await api.post(SESSIONS, json={"end_user_id": ada})).status_code == 401
    r = await api.post(SESSIONS, json={"end_user_id": ada, "max_cost_usd": 0}, headers=acme.headers)
    assert r.status_code == 422, r.text


async def test_expired_and_unknown_secrets_are_refused(api, db, make_partner):
    acme = await make_partner()
    acme.token = await client_credentials(api, acme)
    ada = await exchanged_end_user(api, acme, "ada")
    session = await embed_session(api, acme, ada)
    secret = session["client_secret"]
    assert (await api.get(TASKS, headers=bearer(secret))).status_code == 200

    forged = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")
    for wrong in (forged, "ctes_emb_01aaaaaaaaaaaaaaaaaaaaaaaaaa.nothing", "ctes_garbage"):
        r = await api.get(TASKS, headers=bearer(wrong))
        assert r.status_code == 401, r.text
        assert r.json()["code"] == "unauthenticated"

    async with db.write_session() as s:
        await s.execute(update(PartnerEmbedSession).where(PartnerEmbedSession.id == session["session_id"])
                        .values(expires_at=utcnow() - timedelta(seconds=1)))
        await s.commit()
    for path in (TASKS, "/embed/v1/session"):
        r = await api.get(path, headers=bearer(secret))
        assert r.status_code == 401, r.text
    # A fresh session for the same end user works again.
    renewed = await embed_session(api, acme, ada)
    assert renewed["client_secret"] != secret
    assert (await api.get(TASKS, headers=bearer(renewed["client_secret"]))).status_code == 200
