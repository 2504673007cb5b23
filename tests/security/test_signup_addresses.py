"""Open sign-up takes one plain email address: a display name, an address list, a quoted or
commented local part, or a CR/LF (a header injection into the confirmation email, once a 500) is
a 422 ``invalid_email`` (problem+json for a script, the form again for a browser), and nothing is
stored or sent."""

from __future__ import annotations

import re

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from codetether.accounts.service import AccountError, normalise_email
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
