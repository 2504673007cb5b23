"""Fixtures for the partner tests: partners registered as ``codetether partners create`` does,
their client credentials tokens, and subject tokens signed the way a partner's backend signs them."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import httpx
import pytest_asyncio
from joserfc import jwt
from joserfc.jwk import OctKey

from codetether.partners.registry import create_partner
from tests.conftest import running_stack

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"


@dataclass
class PartnerCreds:
    partner_id: str
    client_id: str
    client_secret: str
    shared_secret: str | None
    token: str = ""

    @property
    def auth(self) -> tuple[str, str]:
        return (self.client_id, self.client_secret)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def acting(self, end_user_id: str) -> dict[str, str]:
        return {**self.headers, "CodeTether-End-User": end_user_id}


async def client_credentials(http: httpx.AsyncClient, p: PartnerCreds) -> str:
    r = await http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=p.auth)
    assert r.status_code == 200, r.text
    assert set(r.json()["scope"].split()) == {"partner:manage", "tasks:read", "tasks:write", "messages:write"}
    return r.json()["access_token"]


async def issuer_of(http: httpx.AsyncClient) -> str:
    return (await http.get("/.well-known/oauth-authorization-server")).json()["issuer"]


def subject_claims(p: PartnerCreds, issuer: str, sub: str, **extra) -> dict:
    now = int(time.time())
    return {"iss": p.client_id, "sub": sub, "aud": issuer, "iat": now, "exp": now + 120,
            "jti": uuid.uuid4().hex, **extra}


def sign_hs256(p: PartnerCreds, claims: dict, secret: str | None = None) -> str:
    return jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(secret or p.shared_secret))


def exchange_form(subject_token: str, **extra) -> dict:
    return {"grant_type": EXCHANGE, "subject_token": subject_token, "subject_token_type": JWT_TYPE, **extra}


@pytest_asyncio.fixture
async def make_partner(db, settings):
    async def _make(*, jwks_uri: str | None = None, test: bool = True, origins: list[str] | None = None) -> PartnerCreds:
        origins = origins or (["http://localhost:3000"] if test else ["https://app.example.com"])
        out = await create_partner(db, settings, name=f"Partner {uuid.uuid4().hex[:6]}", origins=origins,
                                   jwks_uri=jwks_uri, shared_secret=jwks_uri is None, test=test)
        return PartnerCreds(out["partner_id"], out["client_id"], out["client_secret"], out.get("shared_secret"))

    return _make


@pytest_asyncio.fixture
async def api(settings, temporal_env, db):
    """The API in-process, without a worker (no task runs)."""
    async with running_stack(settings, temporal_env.client, db, worker=False) as s:
        yield s.http


async def exchanged_end_user(http: httpx.AsyncClient, p: PartnerCreds, sub: str) -> str:
    """Provisions the partner's user ``sub`` silently, as a partner's backend does: a JWT it signs,
    exchanged at /oauth/token. Returns the end user's id."""
    claims = subject_claims(p, await issuer_of(http), sub)
    r = await http.post("/oauth/token", data=exchange_form(sign_hs256(p, claims)), auth=p.auth)
    assert r.status_code == 200, r.text
    return r.json()["end_user_id"]


async def embed_session(http: httpx.AsyncClient, p: PartnerCreds, end_user_id: str, **extra) -> dict:
    """``POST /v1/partner/embed_sessions`` with the partner's client credentials token."""
    r = await http.post("/v1/partner/embed_sessions", json={"end_user_id": end_user_id, **extra}, headers=p.headers)
    assert r.status_code == 201, r.text
    return r.json()
