"""Open sign-up takes one plain email address: a display name, an address list, a quoted or
commented local part, or a CR/LF (a header injection into the confirmation email, once a 500) is
a 422 ``invalid_email`` (problem+json for a script, the form again for a browser), and nothing is
stored or sent. And a pending sign-up made by someone else with the owner's address cannot become
the owner's account: following a confirmation link needs the password it was made with."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from codetether.accounts import websessions
from codetether.accounts.service import AccountError, get_user_by_email, normalise_email
from codetether.accounts.signin import authenticate_password
from codetether.core.config import Settings
from codetether.core.errors import ServiceError
from codetether.core.models import ConsoleToken, User
from tests.conftest import make_settings, running_stack

PASSWORD = "correct horse battery staple"
HOSTILE = [
    "victim@example.com, attacker@evil.test",
    "victim@example.com;attacker@evil.test",
    "Victim <attacker@evil.test>",
    "\"attacker@evil.test\" <victim@example.com>",
    "victim@example.com\r\nBcc: attacker@evil.test",
    "victim@example.com\nBcc: attacker@evil.test",
    "victim@example.com (comment)",
    "\"quoted local\"@example.com",
    "victim@example.com\x00",
    "two@@example.com",
    "no-at-sign.example.com",
    "victim@localhost",
    "victim@-example.com",
    "a" * 65 + "@example.com",
]


@pytest.mark.parametrize("address", HOSTILE)
def test_only_one_plain_address_is_an_email(address):
    with pytest.raises(AccountError) as err:
        normalise_email(address)
    assert err.value.status == 422 and err.value.code == "invalid_email"


def test_plain_addresses_are_normalised():
    assert normalise_email("  Person.Name+tag@Example.COM ") == "person.name+tag@example.com"
    assert normalise_email("o'brien@mail.example.co.uk") == "o'brien@mail.example.co.uk"


@pytest_asyncio.fixture(params=["smtp", "no-smtp"])
async def signup_app(request, temporal_address, database_url, temporal_env, db, tmp_path):
    smtp = {"smtp_url": "smtp://127.0.0.1:9"} if request.param == "smtp" else {}
    settings = make_settings(temporal_address, database_url, tmp_path, signup="open",
                             rate_limit_ip_per_minute=100_000, **smtp)
    async with running_stack(settings, temporal_env.client, db, worker=False) as s:
        yield s


async def _form(http: httpx.AsyncClient) -> str:
    r = await http.get("/console/signup")
    assert r.status_code == 200, r.text
    return re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)


@pytest.mark.parametrize("address", HOSTILE[:6])
async def test_signup_refuses_lists_display_names_and_crlf(signup_app, address):
    http, db = signup_app.http, signup_app.db
    csrf = await _form(http)
    async with db.session() as s:
        before = (await s.execute(select(func.count()).select_from(ConsoleToken))).scalar_one()
    r = await http.post("/console/signup", data={"email": address, "password": PASSWORD, "csrf_token": csrf},
                        headers={"Accept": "application/json"})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "invalid_email"
    # A browser gets the form back with the message, still 422.
    r = await http.post("/console/signup", data={"email": address, "password": PASSWORD, "csrf_token": csrf},
                        headers={"Accept": "text/html"})
    assert r.status_code == 422 and "Enter one email address" in r.text
    async with db.session() as s:
        after = (await s.execute(select(func.count()).select_from(ConsoleToken))).scalar_one()
        made = (await s.execute(select(func.count()).select_from(User).where(User.email.like("%evil.test%")))).scalar_one()
    assert after == before and made == 0


# Pre-account hijack: someone signs up first with another person's address and a password of
# their own; the owner, signing up too, gets two genuine-looking links.

async def test_a_pending_signup_made_by_someone_else_cannot_become_the_owners_account(db):
    victim = f"victim-{uuid.uuid4().hex[:8]}@example.com"
    attackers = await websessions.start_signup(db, victim, "attacker's password")
    owners = await websessions.start_signup(db, victim, PASSWORD)
    # The owner follows the attacker's link (it came first) with their own password: refused,
    # nothing made, and the link is not spent by the refusal.
    with pytest.raises(ServiceError) as err:
        await websessions.complete_signup(db, attackers, PASSWORD)
    assert err.value.code == "signup_password_mismatch"
    assert await get_user_by_email(db, victim) is None
    # The owner's own link works, and voids every other pending sign-up for the address.
    user = await websessions.complete_signup(db, owners, PASSWORD)
    assert user is not None and user.email == victim
    assert await websessions.complete_signup(db, attackers, "attacker's password") is None
    settings = Settings(database_url=db.engine.url.render_as_string(hide_password=False))
    with pytest.raises(ServiceError):
        await authenticate_password(db, settings, victim, "attacker's password", None)
    assert (await authenticate_password(db, settings, victim, PASSWORD, None)).id == user.id


async def test_the_verify_page_asks_for_the_password(signup_app):

    http, db = signup_app.http, signup_app.db
    token = await websessions.start_signup(db, f"page-{uuid.uuid4().hex[:8]}@example.com", PASSWORD)
    r = await http.get(f"/console/verify/{token}")
    assert r.status_code == 200 and 'name="password"' in r.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
    r = await http.post(f"/console/verify/{token}", data={"csrf_token": csrf, "password": "not the one"})
    assert r.status_code == 422 and "not the password" in r.text
    r = await http.post(f"/console/verify/{token}", data={"csrf_token": csrf, "password": PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/console/tasks"
