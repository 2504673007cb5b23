"""Partners' end users through the real API (CONTRACT §14): registration rules, idempotent
creation, listing with a cursor, PATCH, DELETE (tasks cancelled, tokens revoked), isolation
between partners, and acting for an end user with ``CodeTether-End-User``."""

from __future__ import annotations

import pytest

from codetether.partners.registry import PartnerError, create_partner
from tests.conftest import wait_status
from tests.partners.conftest import client_credentials, exchange_form, issuer_of, sign_hs256, subject_claims

END_USERS = "/v1/partner/end_users"
TASKS = "/v1/automation/tasks"


def problem(r, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["code"] == code, r.json()


@pytest.mark.parametrize("origins,test,message", [
    (["http://localhost:3000"], False, "must use https"),
    (["http://example.com"], True, "only for loopback"),
    (["https://app.example.com/path"], False, "no path"),
    ([], False, "at least one origin"),
])
async def test_partner_registration_refuses_bad_origins(db, settings, origins, test, message):
    with pytest.raises(PartnerError, match=message):
        await create_partner(db, settings, name="Bad", origins=origins, shared_secret=True, test=test)


async def test_live_partner_jwks_must_be_https_and_public(db, settings):
    with pytest.raises(PartnerError, match="https"):
        await create_partner(db, settings, name="Bad", origins=["https://a.example.com"],
                             jwks_uri="http://127.0.0.1:9/jwks.json")
    with pytest.raises(PartnerError, match="exactly one"):
        await create_partner(db, settings, name="Bad", origins=["https://a.example.com"],
                             jwks_uri="https://a.example.com/jwks.json", shared_secret=True)


async def test_end_users_are_idempotent_listed_patched_and_isolated(stack, make_partner, make_user):
    http = stack.http
    acme, other = await make_partner(), await make_partner()
    acme.token, other.token = await client_credentials(http, acme), await client_credentials(http, other)

    r = await http.post(END_USERS, json={"external_id": "u-1", "email": "ada@example.com", "first_name": "Ada",
                                         "workspace_external_id": "team-1"}, headers=acme.headers)
    assert r.status_code == 201, r.text
    ada = r.json()
    assert ada["end_user_id"].startswith("eu_") and ada["workspace_id"].startswith("ws_")
    assert ada["status"] == "provisioned" and ada["email"] == "ada@example.com" and ada["external_id"] == "u-1"
    again = await http.post(END_USERS, json={"external_id": "u-1"}, headers=acme.headers)
    assert again.status_code == 200 and again.json()["end_user_id"] == ada["end_user_id"]
    # Another partner's same external id is another end user.
    theirs = await http.post(END_USERS, json={"external_id": "u-1"}, headers=other.headers)
    assert theirs.status_code == 201 and theirs.json()["end_user_id"] != ada["end_user_id"]
    # Same workspace external id: the same workspace.
    bob = (await http.post(END_USERS, json={"external_id": "u-2", "workspace_external_id": "team-1"},
                           headers=acme.headers)).json()
    assert bob["workspace_id"] == ada["workspace_id"]
    carol = (await http.post(END_USERS, json={"external_id": "u-3"}, headers=acme.headers)).json()
    assert carol["workspace_id"] != ada["workspace_id"]

    page1 = (await http.get(END_USERS, params={"limit": 2}, headers=acme.headers)).json()
    assert [e["end_user_id"] for e in page1["data"]] == [carol["end_user_id"], bob["end_user_id"]]
    page2 = (await http.get(END_USERS, params={"limit": 2, "cursor": page1["next_cursor"]}, headers=acme.headers)).json()
    assert [e["end_user_id"] for e in page2["data"]] == [ada["end_user_id"]] and page2["next_cursor"] is None
    by_ext = (await http.get(END_USERS, params={"external_id": "u-2"}, headers=acme.headers)).json()
    assert [e["end_user_id"] for e in by_ext["data"]] == [bob["end_user_id"]]

    r = await http.patch(f"{END_USERS}/{ada['end_user_id']}", json={"last_name": "Lovelace", "email": None},
                         headers=acme.headers)
    assert r.status_code == 200, r.text
    assert r.json()["last_name"] == "Lovelace" and r.json()["email"] is None and r.json()["first_name"] == "Ada"
    assert (await http.get(f"{END_USERS}/{ada['end_user_id']}", headers=acme.headers)).json()["last_name"] == "Lovelace"

    # The other partner cannot see, change, delete or act for acme's end user.
    for method in ("GET", "PATCH", "DELETE"):
        r = await http.request(method, f"{END_USERS}/{ada['end_user_id']}", headers=other.headers,
                               json={} if method == "PATCH" else None)
        problem(r, 404, "end_user_not_found")
    problem(await http.get(TASKS, headers=other.acting(ada["end_user_id"])), 404, "end_user_not_found")
    problem(await http.get(TASKS, headers=acme.acting("eu_00000000000000000000000000")), 404, "end_user_not_found")


async def test_partner_routes_need_a_partner_token(stack, make_user, make_partner):
    user = await make_user()
    problem(await stack.http.get(END_USERS, headers=user.headers), 403, "insufficient_scope")
    acme = await make_partner()
    acme.token = await client_credentials(stack.http, acme)
    eu = (await stack.http.post(END_USERS, json={"external_id": "x"}, headers=acme.headers)).json()
    # The header with any other credential: 403.
    problem(await stack.http.get(TASKS, headers={**user.headers, "CodeTether-End-User": eu["end_user_id"]}),
            403, "end_user_header_not_allowed")
    # Acting as the end user does not carry partner:manage.
    problem(await stack.http.get(END_USERS, headers=acme.acting(eu["end_user_id"])), 403, "insufficient_scope")


async def test_acting_for_an_end_user_and_deleting_it(stack, make_partner):
    http = stack.http
    acme = await make_partner()
    acme.token = await client_credentials(http, acme)
    eu = (await http.post(END_USERS, json={"external_id": "worker-1"}, headers=acme.headers)).json()
    as_eu = acme.acting(eu["end_user_id"])

    r = await http.post(TASKS, json={"title": "Paint", "description": "Paint it\nASK: Which color?"}, headers=as_eu)
    assert r.status_code == 201, r.text
    task = r.json()
    await wait_status(http, task["task_id"], as_eu, {"needs_input"})
    # The task is the end user's: listed for it, not for the partner's own account.
    assert [t["task_id"] for t in (await http.get(TASKS, headers=as_eu)).json()["data"]] == [task["task_id"]]
    assert task["task_id"] not in [t["task_id"] for t in (await http.get(TASKS, headers=acme.headers)).json()["data"]]
    me = (await http.get("/v1/automation/me", headers=as_eu)).json()
    assert me["email"].startswith(eu["end_user_id"])

    # An exchanged token of the same end user, revoked by the DELETE.
    issuer = await issuer_of(http)
    ex = await http.post("/oauth/token", data=exchange_form(sign_hs256(acme, subject_claims(acme, issuer, "worker-1"))),
                         auth=acme.auth)
    assert ex.status_code == 200, ex.text
    assert ex.json()["end_user_id"] == eu["end_user_id"]
    eu_token = {"Authorization": f"Bearer {ex.json()['access_token']}"}
    assert (await http.get(TASKS, headers=eu_token)).status_code == 200

    r = await http.delete(f"{END_USERS}/{eu['end_user_id']}", headers=acme.headers)
    assert r.status_code == 204, r.text
    assert (await http.get(TASKS, headers=eu_token)).status_code == 401
    problem(await http.get(f"{END_USERS}/{eu['end_user_id']}", headers=acme.headers), 404, "end_user_not_found")
    problem(await http.get(TASKS, headers=as_eu), 404, "end_user_not_found")
    async with stack.db.session() as s:
        from codetether.core.models import Task

        assert (await s.get(Task, task["task_id"])).status == "cancelled"
