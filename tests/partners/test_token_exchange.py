"""Token exchange (RFC 8693) at /oauth/token for partners, through the real API: HS256 and JWKS
subject tokens, key rotation, and every refusal (replayed jti, wrong aud, expired, too far ahead,
bad signature) as 400 invalid_grant."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from codetether.partners import subject_tokens
from tests.partners.conftest import client_credentials, exchange_form, issuer_of, sign_hs256, subject_claims


def refused(r, error: str = "invalid_grant") -> str:
    assert r.status_code == 400, r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.json()["error"] == error, r.json()
    return r.json()["error_description"]


async def test_exchange_creates_the_end_user_on_first_use(api, make_partner):
    acme = await make_partner()
    issuer = await issuer_of(api)
    claims = subject_claims(acme, issuer, "ext-42", email="ada@example.com", given_name="Ada", family_name="L",
                            workspace="team-9")
    r = await api.post("/oauth/token", data=exchange_form(sign_hs256(acme, claims)), auth=acme.auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and 0 < body["expires_in"] <= 900
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert set(body["scope"].split()) == {"tasks:read", "tasks:write", "messages:write"}
    assert body["end_user_id"].startswith("eu_") and body["workspace_id"].startswith("ws_")
    assert "refresh_token" not in body

    acme.token = await client_credentials(api, acme)
    eu = (await api.get(f"/v1/partner/end_users/{body['end_user_id']}", headers=acme.headers)).json()
    assert (eu["external_id"], eu["email"], eu["first_name"], eu["last_name"], eu["workspace_external_id"]) == (
        "ext-42", "ada@example.com", "Ada", "L", "team-9")
    # The token acts as the end user; a second exchange finds the same one.
    token = {"Authorization": f"Bearer {body['access_token']}"}
    assert (await api.get("/v1/automation/tasks", headers=token)).status_code == 200
    assert (await api.get("/v1/partner/end_users", headers=token)).status_code == 403
    again = await api.post("/oauth/token", data=exchange_form(sign_hs256(acme, subject_claims(acme, issuer, "ext-42"))),
                           auth=acme.auth)
    assert again.json()["end_user_id"] == body["end_user_id"]
    # client_secret_post works too; a narrower scope is honoured.
    post = await api.post("/oauth/token", data=exchange_form(
        sign_hs256(acme, subject_claims(acme, issuer, "ext-42")), scope="tasks:read",
        client_id=acme.client_id, client_secret=acme.client_secret))
    assert post.status_code == 200 and post.json()["scope"] == "tasks:read"


async def test_bad_subject_tokens_are_invalid_grant(api, make_partner):
    acme, other = await make_partner(), await make_partner()
    issuer = await issuer_of(api)

    async def exchange(token: str, partner=acme):
        return await api.post("/oauth/token", data=exchange_form(token), auth=partner.auth)

    claims = subject_claims(acme, issuer, "ext-1")
    assert (await exchange(sign_hs256(acme, claims))).status_code == 200
    assert "replay" in refused(await exchange(sign_hs256(acme, claims)))
    assert "aud" in refused(await exchange(sign_hs256(acme, {**subject_claims(acme, issuer, "x"),
                                                             "aud": "https://elsewhere.example.com"})))
    now = int(time.time())
    assert "expired" in refused(await exchange(sign_hs256(acme, {**subject_claims(acme, issuer, "x"),
                                                                 "iat": now - 900, "exp": now - 600})))
    assert "at most" in refused(await exchange(sign_hs256(acme, {**subject_claims(acme, issuer, "x"),
                                                                 "exp": now + 3600})))
    assert "signature" in refused(await exchange(sign_hs256(acme, subject_claims(acme, issuer, "x"),
                                                            secret="ctps_" + "x" * 43)))
    assert "iss" in refused(await exchange(sign_hs256(acme, subject_claims(other, issuer, "x"))))
    missing = subject_claims(acme, issuer, "x")
    del missing["jti"]
    assert "jti" in refused(await exchange(sign_hs256(acme, missing)))
    refused(await exchange("not-a-jwt"))
    # Signed by another partner with its own secret, presented by acme: iss and signature fail.
    refused(await exchange(sign_hs256(other, subject_claims(other, issuer, "x"))))
    # Wrong client secret: 401 invalid_client; a non-partner client: unauthorized_client.
    r = await api.post("/oauth/token", data=exchange_form(sign_hs256(acme, subject_claims(acme, issuer, "x"))),
                       auth=(acme.client_id, "cts_wrong"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = await api.post("/oauth/token", data={**exchange_form("a.b.c"), "subject_token_type": "urn:x"}, auth=acme.auth)
    refused(r, "invalid_request")


class _Jwks:
    """A partner's JWKS endpoint on loopback, whose keys the test rotates."""

    def __init__(self) -> None:
        self.keys: list[RSAKey] = []
        self.fetches = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                jwks.fetches += 1
                body = json.dumps({"keys": [k.as_dict(private=False) for k in jwks.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"

    def new_key(self, kid: str) -> RSAKey:
        key = RSAKey.generate_key(2048, parameters={"kid": kid})
        self.keys.append(key)
        return key


@pytest.fixture
def jwks_server():
    server = _Jwks()
    yield server
    server.server.shutdown()


async def test_jwks_partner_with_key_rotation(api, make_partner, jwks_server, monkeypatch):
    k1 = jwks_server.new_key("k1")
    acme = await make_partner(jwks_uri=jwks_server.url)
    issuer = await issuer_of(api)

    def sign(key: RSAKey, sub: str) -> str:
        return jwt.encode({"alg": "RS256", "kid": key.kid}, subject_claims(acme, issuer, sub), key)

    async def exchange(token: str):
        return await api.post("/oauth/token", data=exchange_form(token), auth=acme.auth)

    assert (await exchange(sign(k1, "a"))).status_code == 200
    assert (await exchange(sign(k1, "b"))).status_code == 200
    assert jwks_server.fetches == 1  # cached

    # A rotated key: the unknown kid makes the service fetch the JWKS again (once the
    # per-partner refetch interval has passed since the last fetch).
    k2 = jwks_server.new_key("k2")
    monkeypatch.setattr(subject_tokens, "JWKS_REFETCH_INTERVAL", 0.0)
    assert (await exchange(sign(k2, "d"))).status_code == 200
    assert jwks_server.fetches == 2
    assert (await exchange(sign(k1, "e"))).status_code == 200  # the old key still in the set
    assert jwks_server.fetches == 2
    before = jwks_server.fetches
    # Unknown kids cannot make the service hammer the partner: one fetch per interval.
    monkeypatch.setattr(subject_tokens, "JWKS_REFETCH_INTERVAL", 3600.0)
    stranger = RSAKey.generate_key(2048, parameters={"kid": "nobody"})
    results = await asyncio.gather(*(exchange(sign(stranger, f"s{i}")) for i in range(5)))
    assert all(r.status_code == 400 and r.json()["error"] == "invalid_grant" for r in results)
    assert jwks_server.fetches - before <= 1
    # A JWKS partner has no shared secret: HS256 is refused.
    hs = jwt.encode({"alg": "HS256"}, subject_claims(acme, issuer, "f"), OctKey.import_key("x" * 40))
    assert "shared secret" in refused(await exchange(hs))


async def test_live_partner_jwks_follows_the_webhook_ssrf_rules(api, make_partner):
    # Registration checks the shape; the fetch itself refuses a non-public address.
    acme = await make_partner(jwks_uri="https://127.0.0.1:9/jwks.json", test=False)
    issuer = await issuer_of(api)
    key = RSAKey.generate_key(2048, parameters={"kid": "k"})
    token = jwt.encode({"alg": "RS256", "kid": "k"}, subject_claims(acme, issuer, "a"), key)
    r = await api.post("/oauth/token", data=exchange_form(token), auth=acme.auth)
    assert "could not be fetched" in refused(r)
