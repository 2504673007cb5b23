"""External OIDC issuer: JWTs signed with RSA keys made here, the issuer's discovery document and
JWKS served on a loopback port, verified by the API with joserfc."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest_asyncio
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import select

from codetether.core.models import User
from tests.conftest import make_settings, running_stack


class FakeIssuer:
    """Serves /.well-known/openid-configuration and the JWKS of an issuer, counting key fetches."""

    def __init__(self) -> None:
        self.keys: list[RSAKey] = []
        self.jwks_fetches = 0
        self.server: asyncio.AbstractServer | None = None
        self.issuer = ""

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.issuer = f"http://127.0.0.1:{port}/realms/codetether"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = (await reader.readline()).decode()
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        path = line.split(" ")[1] if " " in line else "/"
        if path.endswith("/.well-known/openid-configuration"):
            body, status = {"issuer": self.issuer, "jwks_uri": f"{self.issuer}/protocol/openid-connect/certs"}, 200
        elif path.endswith("/certs"):
            self.jwks_fetches += 1
            body, status = KeySet(self.keys).as_dict(private=False), 200
        else:
            body, status = {"error": "not found"}, 404
        raw = json.dumps(body).encode()
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(raw)}\r\n"
                     f"Connection: close\r\n\r\n".encode() + raw)
        await writer.drain()
        writer.close()

    def new_key(self, kid: str) -> RSAKey:
        key = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})
        self.keys.append(key)
        return key

    def token(self, key: RSAKey, **overrides) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": "codetether-api", "sub": overrides.pop("sub", "kc-user-1"),
                  "exp": now + 300, "iat": now, "nbf": now - 5, "scope": "openid profile tasks:read webhooks:manage",
                  "email": "kc-user@example.org", "email_verified": True, "azp": "zapier"}
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


@pytest_asyncio.fixture
async def issuer():
    fake = FakeIssuer()
    await fake.start()
    yield fake
    fake.server.close()
    await fake.server.wait_closed()


@pytest_asyncio.fixture
async def oidc_api(issuer, temporal_address, database_url, tmp_path, temporal_env, db):
    settings = make_settings(temporal_address, database_url, tmp_path, oidc_issuer=issuer.issuer,
                             oidc_audience="codetether-api")
    async with running_stack(settings, temporal_env.client, db, worker=False) as s:
        yield s


def _h(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def test_valid_token_maps_to_a_user_created_on_first_sight(oidc_api, issuer, db):
    key = issuer.new_key("k1")
    sub = f"kc-{uuid.uuid4().hex[:8]}"
    token = issuer.token(key, sub=sub, email=f"{sub}@example.org")
    r = await oidc_api.http.get("/v1/automation/me", headers=_h(token))
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["auth_method"] == "oidc" and me["email"] == f"{sub}@example.org"
    # scopes: the token's, intersected with CodeTether's
    assert me["scopes"] == ["tasks:read", "webhooks:manage"]
    async with db.session() as s:
        user = (await s.execute(select(User).where(User.id == me["user_id"]))).scalar_one()
    assert user.source == "oidc" and user.external_subject == f"{issuer.issuer}|{sub}"
    again = await oidc_api.http.get("/v1/automation/me", headers=_h(issuer.token(key, sub=sub)))
    assert again.json()["user_id"] == me["user_id"]
    assert issuer.jwks_fetches == 1  # cached
    # scope checks apply as to API keys
    r = await oidc_api.http.post("/v1/automation/tasks", headers=_h(token), json={"title": "t", "prompt": "p"})
    assert r.status_code == 403 and r.json()["code"] == "insufficient_scope"
    r = await oidc_api.http.get("/v1/automation/tasks", headers=_h(token))
    assert r.status_code == 200


async def test_claims_are_validated(oidc_api, issuer):
    key = issuer.new_key("k1")
    now = int(time.time())
    bad = {
        "wrong audience": issuer.token(key, aud="someone-else"),
        "no audience": issuer.token(key, aud=None),
        "wrong issuer": issuer.token(key, iss="http://127.0.0.1:1/realms/other"),
        "expired": issuer.token(key, exp=now - 120, iat=now - 600, nbf=now - 600),
        "not yet valid": issuer.token(key, nbf=now + 600),
        "no expiry": issuer.token(key, exp=None),
    }
    for why, token in bad.items():
        r = await oidc_api.http.get("/v1/automation/me", headers=_h(token))
        assert r.status_code == 401, why
        assert r.headers["www-authenticate"].startswith("Bearer"), why
    good = issuer.token(key)
    header, payload, sig = good.split(".")
    forged = issuer.token(RSAKey.generate_key(2048, parameters={"kid": "k1"}))  # same kid, other key
    for token in (f"{header}.{payload}.{sig[:-4]}AAAA", forged):
        assert (await oidc_api.http.get("/v1/automation/me", headers=_h(token))).status_code == 401
    assert (await oidc_api.http.get("/v1/automation/me", headers=_h(good))).status_code == 200


async def test_unknown_kid_refreshes_the_key_set(oidc_api, issuer):
    oidc_api.app.state.codetether.extras["oidc"].refresh_interval = 0
    k1 = issuer.new_key("k1")
    assert (await oidc_api.http.get("/v1/automation/me", headers=_h(issuer.token(k1)))).status_code == 200
    fetches = issuer.jwks_fetches
    k2 = issuer.new_key("k2")  # the issuer rotates its keys
    r = await oidc_api.http.get("/v1/automation/me", headers=_h(issuer.token(k2)))
    assert r.status_code == 200, r.text
    assert issuer.jwks_fetches == fetches + 1
    # a kid the issuer does not publish is refused
    stray = RSAKey.generate_key(2048, parameters={"kid": "k-unknown"})
    assert (await oidc_api.http.get("/v1/automation/me", headers=_h(issuer.token(stray)))).status_code == 401


async def test_jwts_are_refused_without_an_issuer_configured(api, issuer):
    key = issuer.new_key("k1")
    r = await api.get("/v1/automation/me", headers=_h(issuer.token(key)))
    assert r.status_code == 401
    assert issuer.jwks_fetches == 0


async def test_without_a_configured_audience_no_bearer_jwt_is_accepted(issuer, temporal_address, database_url,
                                                                        tmp_path, temporal_env, db):
    # Any token the issuer made for any of its clients (here one for "some-other-app") used to do.
    settings = make_settings(temporal_address, database_url, tmp_path, oidc_issuer=issuer.issuer)
    key = issuer.new_key("k1")
    async with running_stack(settings, temporal_env.client, db, worker=False) as s:
        for aud in ("some-other-app", "codetether-api", None):
            r = await s.http.get("/v1/automation/me", headers=_h(issuer.token(key, aud=aud)))
            assert r.status_code == 401, aud


async def test_an_unverified_email_claim_takes_no_address(oidc_api, issuer, db):
    key = issuer.new_key("k1")
    for verified in (False, "true", None):
        sub = f"kc-{uuid.uuid4().hex[:8]}"
        claimed = f"{sub}@example.org"
        r = await oidc_api.http.get("/v1/automation/me",
                                    headers=_h(issuer.token(key, sub=sub, email=claimed, email_verified=verified)))
        assert r.status_code == 200, r.text
        assert r.json()["email"] != claimed and r.json()["email"].endswith("@users.codetether.invalid")
    # A verified but malformed one ("a@b, c@d") takes none either.
    sub = f"kc-{uuid.uuid4().hex[:8]}"
    r = await oidc_api.http.get("/v1/automation/me",
                                headers=_h(issuer.token(key, sub=sub, email=f"{sub}@example.org, x@evil.test")))
    assert r.json()["email"].endswith("@users.codetether.invalid")
