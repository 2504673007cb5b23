"""Claim links: how the account is made. Setting an address that belongs to another account is
refused (that person signs in instead); signing in to an existing account moves the end user's
tasks with their events into it, and is throttled and locked like the console's sign-in; with
SMTP configured the address is set only once its emailed confirmation is followed with the same
password."""

from __future__ import annotations

import asyncio
import re
import uuid

from sqlalchemy import select

from codetether.accounts.service import create_user, get_user_by_email
from codetether.core.db import Database, migrate
from codetether.core.models import PartnerEndUser, Task, TaskEvent
from codetether.partners.registry import create_partner
from tests.conftest import make_settings, running_stack, wait_status
from tests.console.conftest import PASSWORD
from tests.notifications.test_email import Inbox, _free_port
from tests.partners.claimlinks import (
    CSRF,
    END_USERS,
    REFRESH_URL,
    RETURN_URL,
    TASKS,
    claim_link,
    open_form,
    partner_with_end_user,
    redirected_to,
    submit,
)
from tests.partners.conftest import PartnerCreds, client_credentials, exchange_form, issuer_of, sign_hs256, subject_claims


async def test_an_address_of_another_account_must_sign_in_instead(stack, make_partner, make_user):
    http = stack.http
    existing = await make_user(password=PASSWORD)
    acme, eu = await partner_with_end_user(http, make_partner, email=existing.email)
    url = await claim_link(http, acme, eu["end_user_id"])
    csrf = await open_form(http, url)
    for email in (existing.email, existing.email.upper()):
        r = await submit(http, url, csrf, "create", email, "another password 123")
        assert r.status_code == 422 and "already exists" in r.text and "sign in to it instead" in r.text
    r = await submit(http, url, csrf, "create", "two@example.com, three@example.com", PASSWORD)
    assert r.status_code == 422 and "one email address" in r.text
    # Nothing changed: the other account keeps its password, the link still works.
    assert (await http.get(f"{END_USERS}/{eu['end_user_id']}", headers=acme.headers)).json()["status"] == "provisioned"
    fresh = f"c-{uuid.uuid4().hex[:8]}@example.com"
    redirected_to(await submit(http, url, csrf, "create", fresh, PASSWORD), RETURN_URL)


async def test_signing_in_merges_the_end_users_tasks_into_the_account(stack, make_partner, make_user):
    http = stack.http
    person = await make_user(password=PASSWORD)
    own = (await http.post(TASKS, json={"title": "Mine", "description": "My own task"}, headers=person.headers)).json()
    acme, eu = await partner_with_end_user(http, make_partner)
    as_eu = acme.acting(eu["end_user_id"])
    made = []
    for title in ("Draft the report", "Check the figures"):
        r = await http.post(TASKS, json={"title": title, "description": f"{title}, please"}, headers=as_eu)
        assert r.status_code == 201, r.text
        made.append(r.json()["task_id"])
    for tid in made:
        await wait_status(http, tid, as_eu, {"completed"})
    async with stack.db.session() as s:
        old_user = (await s.get(PartnerEndUser, eu["end_user_id"])).user_id
    # An exchanged token of the end user, issued before the claim.
    issuer = await issuer_of(http)
    ex = await http.post("/oauth/token", data=exchange_form(sign_hs256(acme, subject_claims(acme, issuer, "u-1"))),
                         auth=acme.auth)
    eu_token = {"Authorization": f"Bearer {ex.json()['access_token']}"}

    url = await claim_link(http, acme, eu["end_user_id"])
    csrf = await open_form(http, url)
    # A wrong password is the console's refusal; the link is not spent.
    r = await submit(http, url, csrf, "signin", person.email, "not the password")
    assert r.status_code == 401 and "not correct" in r.text and "Claim your account" in r.text
    redirected_to(await submit(http, url, csrf, "signin", person.email, PASSWORD), RETURN_URL)

    # The person's own account now holds their earlier task and the end user's, with their events.
    mine = {t["task_id"] for t in (await http.get(TASKS, headers=person.headers)).json()["data"]}
    assert mine == {own["task_id"], *made}
    for tid in made:
        assert (await http.get(f"{TASKS}/{tid}", headers=person.headers)).json()["status"] == "completed"
        events = (await http.get(f"{TASKS}/{tid}/events", headers=person.headers)).json()["data"]
        assert events and events[-1]["event"] == "task.completed"
    async with stack.db.session() as s:
        assert (await s.get(PartnerEndUser, eu["end_user_id"])).user_id == person.user_id
        for tid in made:
            assert (await s.get(Task, tid)).user_id == person.user_id
            owners = set((await s.execute(select(TaskEvent.user_id).where(TaskEvent.task_id == tid))).scalars())
            assert owners == {person.user_id}
        assert (await s.execute(select(Task).where(Task.user_id == old_user))).first() is None
    # The partner acts for the end user on that account now (and the earlier token follows it).
    eu_view = (await http.get(f"{END_USERS}/{eu['end_user_id']}", headers=acme.headers)).json()
    assert eu_view["status"] == "claimed"
    assert {t["task_id"] for t in (await http.get(TASKS, headers=as_eu)).json()["data"]} == mine
    assert {t["task_id"] for t in (await http.get(TASKS, headers=eu_token)).json()["data"]} == mine


async def test_signing_in_on_the_claim_page_is_throttled_like_the_console(temporal_env, temporal_address, tmp_path):
    # A database of its own: the lockout counts failures per client IP too.
    url = f"sqlite+aiosqlite:///{tmp_path / 'lockout.db'}"
    await asyncio.to_thread(migrate, url)
    own_db = Database(url)
    settings = make_settings(temporal_address, url, tmp_path, signin_max_failures=2, signin_ip_max_failures=1000)
    try:
        person = await create_user(own_db, f"p-{uuid.uuid4().hex[:8]}@example.com", password=PASSWORD)
        out = await create_partner(own_db, settings, name="Acme", origins=["http://localhost:3000"],
                                   shared_secret=True, test=True)
        acme = PartnerCreds(out["partner_id"], out["client_id"], out["client_secret"], out["shared_secret"])
        async with running_stack(settings, temporal_env.client, own_db, worker=False) as stack:
            http = stack.http
            acme.token = await client_credentials(http, acme)
            eu = (await http.post(END_USERS, json={"external_id": "lock-1"}, headers=acme.headers)).json()
            link = await claim_link(http, acme, eu["end_user_id"])
            csrf = await open_form(http, link)
            r = await submit(http, link, csrf, "signin", person.email, "wrong password")
            assert r.status_code == 401, r.text
            # The second failure uses up the limit of two and locks the account.
            r = await submit(http, link, csrf, "signin", person.email, "wrong password")
            assert r.status_code == 429, r.text
            # Locked: even the right password is refused, and the link is still there to use later.
            r = await submit(http, link, csrf, "signin", person.email, PASSWORD)
            assert r.status_code == 429 and "Too many failed sign-ins" in r.text and int(r.headers["retry-after"]) > 0
            assert (await http.get(link)).status_code == 200
            status = (await http.get(f"{END_USERS}/{eu['end_user_id']}", headers=acme.headers)).json()["status"]
            assert status == "provisioned"
    finally:
        await own_db.dispose()


async def test_with_smtp_the_address_is_set_once_its_confirmation_is_followed(temporal_env, temporal_address, db,
                                                                               make_partner, tmp_path):
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    inbox.loop = asyncio.get_running_loop()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    settings = make_settings(temporal_address, str(db.engine.url.render_as_string(hide_password=False)), tmp_path,
                             smtp_url=f"smtp://127.0.0.1:{controller.port}")
    try:
        async with running_stack(settings, temporal_env.client, db, worker=False) as stack:
            http = stack.http
            acme, eu = await partner_with_end_user(http, make_partner)
            url = await claim_link(http, acme, eu["end_user_id"])
            email = f"mailed-{uuid.uuid4().hex[:8]}@example.com"
            r = await submit(http, url, await open_form(http, url), "create", email, PASSWORD)
            assert r.status_code == 200 and "Check your email" in r.text and RETURN_URL.replace("&", "&amp;") in r.text
            # Nothing is claimed until the address is confirmed; the link itself is spent.
            assert await get_user_by_email(stack.db, email) is None
            status = (await http.get(f"{END_USERS}/{eu['end_user_id']}", headers=acme.headers)).json()["status"]
            assert status == "provisioned"
            redirected_to(await http.get(url), REFRESH_URL)

            rcpt, msg = await inbox.next()
            assert rcpt == [email]
            confirm = re.search(r"http://\S+/console/verify/\S+", msg.get_content()).group(0)
            page = await http.get(confirm)
            assert page.status_code == 200
            csrf = CSRF.search(page.text).group(1)
            # Only the person who chose the password can finish it.
            r = await http.post(confirm, data={"csrf_token": csrf, "password": "someone else's guess"})
            assert r.status_code == 422 and await get_user_by_email(stack.db, email) is None
            r = await http.post(confirm, data={"csrf_token": csrf, "password": PASSWORD})
            redirected_to(r, "/console/tasks")
            account = await get_user_by_email(stack.db, email)
            assert account is not None and account.source == "local"
            claimed = (await http.get(f"{END_USERS}/{eu['end_user_id']}", headers=acme.headers)).json()
            assert claimed["status"] == "claimed"
            async with stack.db.session() as s:
                assert (await s.get(PartnerEndUser, eu["end_user_id"])).user_id == account.id
            # The confirmation works once.
            r = await http.post(confirm, data={"csrf_token": CSRF.search((await http.get(confirm)).text).group(1),
                                               "password": PASSWORD})
            assert r.status_code == 400
    finally:
        controller.stop()
