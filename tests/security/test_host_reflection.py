"""Without ``CODETETHER_PUBLIC_URL`` the server must not name itself after a request's ``Host``:
OAuth and RFC 9728 metadata, the A2A agent card and MCP's ``WWW-Authenticate`` challenge once
advertised ``https://evil.test`` to anyone who asked with that Host, and let caches keep it for an
hour. Now a foreign Host gets the listening address, a loopback or allowed Host is used but never
kept by a shared cache (the agent card, whose clients expect a max-age, is ``private`` and varies
by Host), and a configured public URL wins over any Host (and only it is publicly cacheable). MCP
itself refuses a foreign Host outright (403, DNS-rebinding protection,
tests/security/test_mcp_rebinding.py)."""

from __future__ import annotations

import json

import httpx
import pytest_asyncio

from tests.conftest import make_settings, running_stack

EVIL = "evil.test"
DOCS = ["/.well-known/oauth-authorization-server", "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp", "/.well-known/agent-card.json"]


async def _stack(temporal_address, database_url, tmp_path, temporal_env, db, **overrides):
    settings = make_settings(temporal_address, database_url, tmp_path, oauth_dynamic_registration=True, **overrides)
    return running_stack(settings, temporal_env.client, db, worker=False)


async def _advertised(http: httpx.AsyncClient, host: str, *, mcp_answers: bool = True) -> tuple[str, list[str]]:
    """Everything the four documents and the MCP challenge say, and their Cache-Control values."""
    texts, caching = [], []
    for path in DOCS:
        r = await http.get(path, headers={"Host": host})
        assert r.status_code == 200, (path, r.text)
        texts.append(r.text)
        caching.append(r.headers.get("cache-control", ""))
    r = await http.post("/mcp", headers={"Host": host, "Accept": "application/json, text/event-stream"},
                        json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    if mcp_answers:
        assert r.status_code == 401
        texts.append(r.headers["www-authenticate"])
    else:
        # A Host that is not one of the server's names never reaches MCP's challenge.
        assert r.status_code == 403 and r.json()["error"]["data"]["code"] == "host_not_allowed"
    return json.dumps(texts), caching


@pytest_asyncio.fixture
async def no_public_url(temporal_address, database_url, tmp_path, temporal_env, db):
    async with await _stack(temporal_address, database_url, tmp_path, temporal_env, db,
                            allowed_hosts="api.internal.example") as s:
        yield s


async def test_a_foreign_host_is_never_advertised(no_public_url):
    for host in (EVIL, f"{EVIL}:443", f"127.0.0.1@{EVIL}", f"{EVIL}/127.0.0.1"):
        said, caching = await _advertised(no_public_url.http, host, mcp_answers=False)
        assert EVIL not in said, host
        assert "http://127.0.0.1:8000" in said
        assert all("max-age" not in c for c in caching[:3]), caching
        assert caching[3].startswith("private,"), caching


async def test_loopback_and_allowed_hosts_are_used_but_not_cached(no_public_url):
    for host, base in (("localhost:8123", "http://localhost:8123"), ("[::1]:9000", "http://[::1]:9000"),
                       ("api.internal.example", "http://api.internal.example")):
        said, caching = await _advertised(no_public_url.http, host)
        assert base in said and "127.0.0.1:8000" not in said, host
        assert all(c == "no-store" for c in caching[:3]), caching
        assert caching[3] == "private, max-age=300"
    # Nothing else in the Host header reaches a URL.
    said, _ = await _advertised(no_public_url.http, "localhost:8123/x?y=#", mcp_answers=False)
    assert "8123/x" not in said and "?y" not in said


async def test_a_public_url_wins_and_is_cacheable(temporal_address, database_url, tmp_path, temporal_env, db):
    async with await _stack(temporal_address, database_url, tmp_path, temporal_env, db,
                            public_url="https://codetether.example.com") as s:
        said, caching = await _advertised(s.http, EVIL, mcp_answers=False)
        assert EVIL not in said and "https://codetether.example.com/oauth/authorize" in said
        assert caching[:3] == ["public, max-age=3600"] * 3
