"""Finding 4: proxies.

Only 127.0.0.1 was trusted for ``X-Forwarded-*``, so behind the compose file's nginx (its own
container) every unauthenticated client shared one per-IP bucket and cookies lost ``Secure``.
``CODETETHER_TRUSTED_PROXIES`` (addresses/CIDRs) now names the proxies; docker-compose.yml sets it
to the proxy network; cookies' ``Secure`` follows the public URL's scheme.

The in-process client connects from 127.0.0.1, which plays the proxy here.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.conftest import make_settings, running_stack
from tests.oauth.conftest import REDIRECT

ROOT = Path(__file__).resolve().parents[2]


async def _spec_calls(settings, temporal_env, db, forwarded_for: list[str]) -> list[int]:
    async with running_stack(settings, temporal_env.client, db, worker=False) as s:
        return [
            (await s.http.get("/openapi.json", headers={"X-Forwarded-For": ip})).status_code for ip in forwarded_for
        ]


async def test_trusted_proxy_gives_each_client_its_own_ip_bucket(temporal_address, database_url, tmp_path,
                                                                  temporal_env, db):
    clients = ["198.51.100.7", "198.51.100.7", "203.0.113.9", "203.0.113.9"]
    trusted = make_settings(temporal_address, database_url, tmp_path, rate_limit_ip_per_minute=2,
                            trusted_proxies="10.0.0.0/8, 127.0.0.0/8")
    assert await _spec_calls(trusted, temporal_env, db, clients) == [200, 200, 200, 200]

    # The same proxy not in the setting: its headers are ignored, everyone shares its address.
    untrusted = make_settings(temporal_address, database_url, tmp_path, rate_limit_ip_per_minute=2,
                              trusted_proxies="10.0.0.0/8")
    assert await _spec_calls(untrusted, temporal_env, db, clients) == [200, 200, 429, 429]


async def test_a_client_cannot_pick_its_own_address_through_a_trusted_proxy(temporal_address, database_url,
                                                                             tmp_path, temporal_env, db):
    # nginx appends the real peer; a spoofed value in front of it must not become the client.
    settings = make_settings(temporal_address, database_url, tmp_path, rate_limit_ip_per_minute=2,
                             trusted_proxies="127.0.0.1")
    spoofed = [f"192.0.2.{i}, 198.51.100.50" for i in range(3)]
    assert await _spec_calls(settings, temporal_env, db, spoofed) == [200, 200, 429]


async def _signin_cookie(settings, temporal_env, db, headers: dict[str, str]) -> str:
    from codetether.accounts.oauth_clients import create_oauth_client

    client = await create_oauth_client(db, name="cookie check", redirect_uris=[REDIRECT], public=False)
    async with running_stack(settings, temporal_env.client, db, worker=False) as s:
        r = await s.http.get("/oauth/authorize", headers=headers, params={
            "response_type": "code", "client_id": client["client_id"], "redirect_uri": REDIRECT, "state": "x"})
        assert r.status_code == 200, r.text
        return r.headers["set-cookie"]


async def test_cookie_secure_follows_public_url_and_trusted_proto(temporal_address, database_url, tmp_path,
                                                                  temporal_env, db):
    https_public = make_settings(temporal_address, database_url, tmp_path, public_url="https://ct.example.com",
                                 trusted_proxies="10.0.0.0/8")
    assert "secure" in (await _signin_cookie(https_public, temporal_env, db, {})).lower()

    behind_proxy = make_settings(temporal_address, database_url, tmp_path, trusted_proxies="127.0.0.1")
    cookie = await _signin_cookie(behind_proxy, temporal_env, db, {"X-Forwarded-Proto": "https"})
    assert "secure" in cookie.lower()

    # An untrusted peer cannot switch it (nor off: plain http stays plain).
    untrusted = make_settings(temporal_address, database_url, tmp_path, trusted_proxies="10.0.0.0/8")
    cookie = await _signin_cookie(untrusted, temporal_env, db, {"X-Forwarded-Proto": "https"})
    assert "secure" not in cookie.lower()


def test_compose_trusts_exactly_the_proxy_network():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    subnet = compose["networks"]["edge"]["ipam"]["config"][0]["subnet"]
    assert services["api"]["environment"]["CODETETHER_TRUSTED_PROXIES"] == subnet
    assert "edge" in services["proxy"]["networks"] and "edge" in services["api"]["networks"]
    assert services["proxy"]["networks"] == ["edge"]
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "X-Forwarded-For $proxy_add_x_forwarded_for" in nginx
    assert "X-Forwarded-Proto $scheme" in nginx
