"""Claim links (CONTRACT §14): ``POST /v1/partner/end_users/{id}/account_links`` and the page
behind the link, ``/console/claim/<token>``.

Acceptance, in chromium against the live stack: a claim link used once lets the end user set a
password, and then sign in to the console and see the task created for it; used a second time it
is refused (the browser lands on the partner's ``refresh_url``, never on the form); used after
five minutes, the same. Over HTTP: the refusals of the API (404, 409, 422), single use and expiry,
the link shared by two uses at once (one wins), and the ``end_user.created`` /
``end_user.claimed`` events reaching the partner's subscription on a loopback receiver. How the
account is made or merged is ``test_claim_accounts.py``.

Expiry is simulated the way the other expiring-link tests do it: the link's row is moved five
minutes into the past (``created_at`` and ``expires_at`` alike), no sleeping.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
from sqlalchemy import select

from codetether.accounts.credentials import hash_token
from codetether.accounts.service import get_user_by_email
from codetether.core.models import PartnerAccountLink, PartnerEndUser
from codetether.partners.registry import create_partner
from tests.conftest import wait_status
from tests.console.conftest import PASSWORD, console, console_db, needs_chromium, sign_in  # noqa: F401 - fixtures
from tests.partners.claimlinks import (
    CSRF,
    END_USERS,
    REFRESH_URL,
    RETURN_URL,
    TASKS,
    age_link,
    claim_link,
    open_form,
    partner_with_end_user,
    problem,
    redirected_to,
    submit,
)
from tests.partners.conftest import PartnerCreds, client_credentials, exchange_form, issuer_of, sign_hs256, subject_claims
from tests.support.receiver import Receiver


async def test_account_link_refusals(stack, make_partner, make_user):
    http = stack.http
    acme, eu = await partner_with_end_user(http, make_partner)
    other, _ = await partner_with_end_user(http, make_partner)
    links = f"{END_USERS}/{eu['end_user_id']}/account_links"
    body = {"type": "claim", "return_url": RETURN_URL, "refresh_url": REFRESH_URL}

    # Another partner's end user does not exist for it; an unknown one neither.
    problem(await http.post(links, json=body, headers=other.headers), 404, "end_user_not_found")
    problem(await http.post(f"{END_USERS}/eu_00000000000000000000000000/account_links", json=body,
                            headers=acme.headers), 404, "end_user_not_found")
    # Only a partner's client credentials token may make links.
    user = await make_user()
    problem(await http.post(links, json=body, headers=user.headers), 403, "insufficient_scope")
    problem(await http.post(links, json=body, headers=acme.acting(eu["end_user_id"])), 403, "insufficient_scope")
    # The URLs must be on the partner's registered origins (http://localhost:3000).
    for field, url in (("return_url", "http://localhost:3001/settings"), ("refresh_url", "https://evil.example/x"),
                       ("return_url", "http://127.0.0.1:3000/settings")):
        r = await http.post(links, json={**body, field: url}, headers=acme.headers)
        problem(r, 422, "url_not_allowed")
        assert field in r.text
    problem(await http.post(links, json={**body, "return_url": "javascript:alert(1)"}, headers=acme.headers),
            422, "invalid_url")
    r = await http.post(links, json={**body, "type": "onboarding"}, headers=acme.headers)
    assert r.status_code == 422, r.text

    url = await claim_link(http, acme, eu["end_user_id"])
    token = url.rsplit("/", 1)[1]
    async with stack.db.session() as s:
        # Only the token's hash is stored.
        assert await s.get(PartnerAccountLink, hash_token(token)) is not None
        assert (await s.execute(select(PartnerAccountLink).where(PartnerAccountLink.token_hash == token))).first() is None
    redirected_to(await submit(http, url, await open_form(http, url), "create", f"c-{uuid.uuid4().hex[:8]}@example.com",
                               PASSWORD), RETURN_URL)
    # A claimed end user gets no new link.
    problem(await http.post(links, json=body, headers=acme.headers), 409, "end_user_claimed")
    # An unknown token is a page that says so (there is no refresh_url to send it to).
    r = await http.get("/console/claim/not-a-real-token")
    assert r.status_code == 404 and "not valid" in r.text


async def test_a_link_works_once_and_not_after_five_minutes(stack, make_partner):
    http = stack.http
    acme, eu = await partner_with_end_user(http, make_partner, email="ada@example.com")
    url = await claim_link(http, acme, eu["end_user_id"])

    # Five minutes later the link only sends the browser back to the partner.
    stale = await claim_link(http, acme, eu["end_user_id"])
    csrf = await open_form(http, stale)
    await age_link(stack.db, stale)
    r = await http.get(stale)
    redirected_to(r, REFRESH_URL)
    assert "Claim your account" not in r.text
    # A form opened in time and sent too late is refused the same way.
    redirected_to(await submit(http, stale, csrf, "create", "ada@example.com", PASSWORD), REFRESH_URL)
    assert (await http.get(f"{END_USERS}/{eu['end_user_id']}", headers=acme.headers)).json()["status"] == "provisioned"

    # The fresh one: the form (pre-filled with the address the partner gave), used once.
    csrf = await open_form(http, url)
    assert 'value="ada@example.com"' in (await http.get(url)).text
    # A short password is refused on the form; the link stays usable.
    r = await submit(http, url, csrf, "create", "ada@example.com", "short")
    assert r.status_code == 422 and "at least 8 characters" in r.text and "Claim your account" in r.text
    r = await submit(http, url, csrf, "create", "ada@example.com", PASSWORD)
    redirected_to(r, RETURN_URL)
    assert "ct_console" in r.headers.get("set-cookie", "")
    # Used: never the form again, whatever the method, in this browser or another one.
    redirected_to(await http.get(url), REFRESH_URL)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=stack.app), base_url="http://testserver") as other:
        redirected_to(await other.get(url), REFRESH_URL)
        login = await other.get(url.split("/claim/")[0] + "/login")  # the link's host: its cookies
        r = await submit(other, url, CSRF.search(login.text).group(1), "create", "ada2@example.com", PASSWORD)
        redirected_to(r, REFRESH_URL)
    assert await get_user_by_email(stack.db, "ada2@example.com") is None

    claimed = (await http.get(f"{END_USERS}/{eu['end_user_id']}", headers=acme.headers)).json()
    assert claimed["status"] == "claimed" and claimed["claimed_at"] is not None
    account = await get_user_by_email(stack.db, "ada@example.com")
    assert account is not None and account.source == "local" and account.password_hash
    async with stack.db.session() as s:
        assert (await s.get(PartnerEndUser, eu["end_user_id"])).user_id == account.id
    # The partner still acts for it, on the same account.
    me = (await http.get("/v1/automation/me", headers=acme.acting(eu["end_user_id"]))).json()
    assert me["email"] == "ada@example.com"


async def test_two_uses_at_once_one_wins(stack, make_partner):
    http = stack.http
    acme, eu = await partner_with_end_user(http, make_partner)
    url = await claim_link(http, acme, eu["end_user_id"])
    csrf = await open_form(http, url)
    first, second = f"a-{uuid.uuid4().hex[:8]}@example.com", f"b-{uuid.uuid4().hex[:8]}@example.com"
    results = await asyncio.gather(submit(http, url, csrf, "create", first, PASSWORD),
                                   submit(http, url, csrf, "create", second, PASSWORD))
    assert sorted(r.headers["location"] for r in results) == sorted([RETURN_URL, REFRESH_URL]), [r.text for r in results]
    made = [e for e in (first, second) if await get_user_by_email(stack.db, e) is not None]
    assert len(made) == 1


async def test_end_user_events_reach_the_partners_subscription(stack, make_partner):
    http = stack.http
    acme = await make_partner()
    acme.token = await client_credentials(http, acme)
    async with Receiver() as receiver:
        # The partner subscribes with its own client credentials token.
        r = await http.post("/v1/webhooks", json={"url": receiver.url, "events": ["end_user.created", "end_user.claimed"]},
                            headers=acme.headers)
        assert r.status_code == 201, r.text

        def events(kind: str):
            return lambda req: json.loads(req.body)["event"] == kind

        eu = (await http.post(END_USERS, json={"external_id": "ev-1", "first_name": "Ada"}, headers=acme.headers)).json()
        # The same external id again creates nothing, and sends nothing.
        assert (await http.post(END_USERS, json={"external_id": "ev-1"}, headers=acme.headers)).status_code == 200
        issuer = await issuer_of(http)
        ex = await http.post("/oauth/token", data=exchange_form(sign_hs256(acme, subject_claims(acme, issuer, "ev-2"))),
                             auth=acme.auth)
        assert ex.status_code == 200, ex.text
        created = await receiver.wait_for(2, predicate=events("end_user.created"))
        data = {json.loads(c.body)["data"]["end_user_id"]: json.loads(c.body)["data"] for c in created}
        assert set(data) == {eu["end_user_id"], ex.json()["end_user_id"]}
        assert data[eu["end_user_id"]] == eu
        assert all(c.headers.get("webhook-signature", "").startswith("v1,") for c in created)

        url = await claim_link(http, acme, eu["end_user_id"])
        redirected_to(await submit(http, url, await open_form(http, url), "create",
                                   f"ev-{uuid.uuid4().hex[:8]}@example.com", PASSWORD), RETURN_URL)
        [claimed] = await receiver.wait_for(1, predicate=events("end_user.claimed"))
        body = json.loads(claimed.body)
        assert body["data"]["end_user_id"] == eu["end_user_id"] and body["data"]["status"] == "claimed"
        assert body["data"] == (await http.get(f"{END_USERS}/{eu['end_user_id']}", headers=acme.headers)).json()
        await asyncio.sleep(0.5)
        # Each once: two creations, one claim.
        assert [json.loads(q.body)["event"] for q in receiver.requests].count("end_user.created") == 2
        assert [json.loads(q.body)["event"] for q in receiver.requests].count("end_user.claimed") == 1


@pytest.mark.e2e
@needs_chromium
async def test_claim_in_a_browser_then_sign_in_and_see_the_task(console):  # noqa: F811 - the fixture
    async with Receiver() as site:
        site.respond = lambda req: 200  # the partner's pages: any path answers "ok"
        origin = f"http://127.0.0.1:{site.port}"
        return_url, refresh_url = f"{origin}/claimed", f"{origin}/claim-again"
        out = await create_partner(console.db, console.settings, name="Acme Docs", origins=[origin],
                                   shared_secret=True, test=True)
        acme = PartnerCreds(out["partner_id"], out["client_id"], out["client_secret"], out["shared_secret"])
        async with console.http() as http:
            acme.token = await client_credentials(http, acme)

            async def provisioned(external_id: str) -> dict:
                return (await http.post(END_USERS, json={"external_id": external_id}, headers=acme.headers)).json()

            eu, late = await provisioned("browser-1"), await provisioned("browser-2")
            title = f"Quarterly summary {uuid.uuid4().hex[:6]}"
            task = (await http.post(TASKS, json={"title": title, "description": "Summarise the quarter"},
                                    headers=acme.acting(eu["end_user_id"]))).json()
            await wait_status(http, task["task_id"], acme.acting(eu["end_user_id"]), {"completed"})

            async def link(end_user_id: str) -> str:
                r = await http.post(f"{END_USERS}/{end_user_id}/account_links",
                                    json={"type": "claim", "return_url": return_url, "refresh_url": refresh_url},
                                    headers=acme.headers)
                assert r.status_code == 201, r.text
                return r.json()["url"]

            url, late_url = await link(eu["end_user_id"]), await link(late["end_user_id"])
        email = f"claimer-{uuid.uuid4().hex[:8]}@example.com"

        # Used once: the form, a password, and back to the partner's page, signed in to the console.
        page = await console.page()
        await page.goto(url)
        assert "Acme Docs" in await page.inner_text("#claim")
        await page.get_by_label("Email", exact=True).fill(email)
        await page.get_by_label("Choose a password").fill(PASSWORD)
        await page.get_by_role("button", name="Claim my account").click()
        await page.wait_for_url(return_url)
        await page.goto(f"{console.base}/console/tasks")
        assert await page.inner_text("#signed-in-as") == email
        assert title in await page.content()

        # Used twice: straight to the partner's refresh_url, no form.
        second = await console.page()
        response = await second.goto(url)
        assert second.url == refresh_url and response.status == 200
        assert [r.path for r in site.requests if r.method == "GET"].count("/claim-again") == 1
        # Used after five minutes: the same.
        await age_link(console.db, late_url)
        await second.goto(late_url)
        assert second.url == refresh_url
        await second.context.close()

        # The person signs in to the console like anyone else and sees the task.
        fresh = await console.page()
        await sign_in(fresh, email)
        row = fresh.locator(f"tr:has-text('{title}')")
        await row.wait_for()
        await row.get_by_role("link", name=title).click()
        await fresh.wait_for_url(f"**/console/tasks/{task['task_id']}")
        assert title in await fresh.inner_text("h1")
        await fresh.context.close()
        await page.context.close()
        async with console.db.session() as s:
            assert (await s.get(PartnerEndUser, late["end_user_id"])).status == "provisioned"


async def test_acting_for_an_end_user_cannot_manage_webhooks(stack, make_partner):
    http = stack.http
    acme = await make_partner()
    acme.token = await client_credentials(http, acme)
    eu = (await http.post(END_USERS, json={"external_id": "hooks-1"}, headers=acme.headers)).json()
    r = await http.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["*"]},
                        headers=acme.acting(eu["end_user_id"]))
    assert r.status_code == 403 and r.json()["code"] == "insufficient_scope", r.text
    assert (await http.get("/v1/webhooks", headers=acme.headers)).status_code == 200
