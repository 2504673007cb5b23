"""Helpers of the claim link tests: making a link as a partner's backend does, and using the page
behind it over HTTP as a browser would (its CSRF token, its form)."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from sqlalchemy import update

from codetether.accounts.credentials import hash_token
from codetether.core.ids import parse_iso, utcnow
from codetether.core.models import PartnerAccountLink
from tests.partners.conftest import PartnerCreds, client_credentials

END_USERS = "/v1/partner/end_users"
TASKS = "/v1/automation/tasks"
RETURN_URL = "http://localhost:3000/settings?claimed=1"
REFRESH_URL = "http://localhost:3000/settings/claim"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def problem(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["code"] == code, r.json()


async def partner_with_end_user(http: httpx.AsyncClient, make_partner, external_id: str = "u-1",
                                **profile) -> tuple[PartnerCreds, dict]:
    p = await make_partner()
    p.token = await client_credentials(http, p)
    r = await http.post(END_USERS, json={"external_id": external_id, **profile}, headers=p.headers)
    assert r.status_code == 201, r.text
    return p, r.json()


async def claim_link(http: httpx.AsyncClient, p: PartnerCreds, end_user_id: str, *, return_url: str = RETURN_URL,
                     refresh_url: str = REFRESH_URL) -> str:
    r = await http.post(f"{END_USERS}/{end_user_id}/account_links",
                        json={"type": "claim", "return_url": return_url, "refresh_url": refresh_url}, headers=p.headers)
    assert r.status_code == 201, r.text
    body = r.json()
    # Single use and at most five minutes: the expiry the partner is told.
    left = parse_iso(body["expires_at"]) - utcnow()
    assert timedelta(minutes=4) < left <= timedelta(minutes=5), body
    assert re.fullmatch(r"http://[^/]+/console/claim/[A-Za-z0-9_-]{40,}", body["url"]), body
    return body["url"]


async def open_form(http: httpx.AsyncClient, url: str) -> str:
    """The claim page's CSRF token (the page must show the form)."""
    r = await http.get(url)
    assert r.status_code == 200, r.text
    assert "Claim your account" in r.text
    return CSRF.search(r.text).group(1)


async def submit(http: httpx.AsyncClient, url: str, csrf: str, mode: str, email: str, password: str) -> httpx.Response:
    return await http.post(url, data={"csrf_token": csrf, "mode": mode, "email": email, "password": password})


def redirected_to(r: httpx.Response, url: str) -> None:
    assert r.status_code == 303, r.text
    assert r.headers["location"] == url


async def age_link(db, url: str, by: timedelta = timedelta(minutes=5, seconds=1)) -> None:
    """Moves the link ``by`` into the past, as if it had been made that long ago."""
    token = url.rsplit("/", 1)[1]
    async with db.write_session() as s:
        link = await s.get(PartnerAccountLink, hash_token(token))
        await s.execute(update(PartnerAccountLink).where(PartnerAccountLink.token_hash == link.token_hash)
                        .values(created_at=link.created_at - by, expires_at=link.expires_at - by))
        await s.commit()
