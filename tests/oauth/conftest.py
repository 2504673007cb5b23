"""Fixtures for the OAuth tests: the API in-process (no worker needed), users with passwords,
registered clients, and helpers that walk the authorization-code flow over HTTP."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest_asyncio

from codetether.accounts.service import create_api_key, create_user
from codetether.accounts.oauth_clients import create_oauth_client
from tests.conftest import running_stack

PASSWORD = "correct horse battery staple"
REDIRECT = "http://127.0.0.1:9/callback"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def csrf_of(html: str) -> str:
    m = re.search(r"name=csrf_token value='([^']+)'", html)
    assert m, html
    return m.group(1)


def request_id_of(html: str) -> str:
    """The consent form's server-side authorization request id."""
    m = re.search(r"name='request_id' value='([^']+)'", html)
    assert m, html
    return m.group(1)


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class Person:
    user_id: str
    email: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest_asyncio.fixture
async def api(settings, temporal_env, db) -> AsyncIterator[httpx.AsyncClient]:
    async with running_stack(settings, temporal_env.client, db, worker=False) as s:
        yield s.http


@pytest_asyncio.fixture
async def person(db) -> Person:
    email = f"oauth-{uuid.uuid4().hex[:10]}@example.com"
    user = await create_user(db, email, tier="pro", password=PASSWORD)
    _row, key = await create_api_key(db, user.id)
    return Person(user.id, email, key)


@pytest_asyncio.fixture
async def public_client(db, person) -> dict:
    return await create_oauth_client(db, name="Zapier (test)", redirect_uris=[REDIRECT], public=True,
                                     owner_email=person.email)


@pytest_asyncio.fixture
async def confidential_client(db, person) -> dict:
    return await create_oauth_client(db, name="Partner backend", redirect_uris=[REDIRECT], public=False,
                                     owner_email=person.email)


async def sign_in_and_consent(http: httpx.AsyncClient, params: dict, email: str, password: str = PASSWORD,
                              action: str = "approve") -> httpx.Response:
    """Walks the sign-in form and the consent page the way a browser would; returns the final response."""
    r = await http.get("/oauth/authorize", params=params)
    assert r.status_code == 200, r.text
    if "is asking to" not in r.text:  # not signed in yet in this client's cookie jar
        assert "Sign in" in r.text
        r = await http.post("/oauth/authorize", data={**params, "action": "signin", "csrf_token": csrf_of(r.text),
                                                     "email": email, "password": password})
        assert r.status_code == 303, r.text
        r = await http.get(r.headers["location"])
    assert r.status_code == 200 and "is asking to" in r.text, r.text
    return await http.post("/oauth/authorize", data={**params, "action": action, "csrf_token": csrf_of(r.text),
                                                     "request_id": request_id_of(r.text)})


async def get_code(http: httpx.AsyncClient, client: dict, email: str, *, scope: str = "tasks:read tasks:write",
                   challenge: str | None = None, state: str = "st-123") -> str:
    params = {"response_type": "code", "client_id": client["client_id"], "redirect_uri": REDIRECT,
              "scope": scope, "state": state}
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    r = await sign_in_and_consent(http, params, email)
    assert r.status_code == 302, r.text
    q = query_of(r.headers["location"])
    assert r.headers["location"].startswith(REDIRECT + "?")
    assert q["state"] == state
    return q["code"]


def basic(client: dict) -> tuple[str, str]:
    return (client["client_id"], client["client_secret"])
