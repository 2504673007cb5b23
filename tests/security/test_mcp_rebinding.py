"""DNS rebinding against ``/mcp``: a page on ``evil.example.com`` whose name resolves to the server
made browsers' requests reach MCP, and ``POST /mcp`` with ``Host: evil.example.com`` or
``Origin: https://evil.example.com`` was answered 200. The transport spec says a server MUST
validate ``Origin`` and answer 403; now ``Host`` and ``Origin`` are checked before authentication
(``codetether/api/mcp/guard.py``), on every method, against the server's own names."""

from __future__ import annotations

import httpx
import pytest
import pytest_asyncio
from starlette.datastructures import Headers

from codetether.api.mcp.guard import TransportGuard
from codetether.core.config import Settings
from tests.conftest import make_settings, running_stack
from tests.support.live_api import LiveServer

PUBLIC = "https://codetether.example.com"
EVIL = "evil.example.com"
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                         "clientInfo": {"name": "rebinding-test", "version": "1"}}}


def refused(settings: Settings, **headers: str) -> str | None:
    refusal = TransportGuard.from_settings(settings).check(Headers(headers))
    return refusal.code if refusal else None


def test_defaults_follow_the_public_url_and_loopback():
    s = Settings(public_url=PUBLIC)
    assert refused(s, host="codetether.example.com") is None
    assert refused(s, host="codetether.example.com:443", origin=PUBLIC) is None
    assert refused(s, host="127.0.0.1:8000", origin="http://localhost:6274") is None  # a local inspector
    assert refused(s, host="[::1]:8000") is None
    assert refused(s, host=EVIL) == "host_not_allowed"
    assert refused(s, host=f"{EVIL}:8000") == "host_not_allowed"
    assert refused(s, host="codetether.example.com", origin=f"https://{EVIL}") == "origin_not_allowed"
    assert refused(s, host="codetether.example.com", origin="https://codetether.example.com.evil.test") == "origin_not_allowed"
    assert refused(s, host="codetether.example.com", origin="null") == "origin_not_allowed"
    # Malformed Host headers never match a name.
    for host in ("", f"127.0.0.1@{EVIL}", f"{EVIL}/127.0.0.1", "localhost:8000/x", "localhost:99999"):
        assert refused(s, host=host) == "host_not_allowed", host


def test_loopback_only_while_listening_on_loopback():
    s = Settings(public_url=PUBLIC, api_host="10.0.0.5")
    assert refused(s, host="localhost:8000") == "host_not_allowed"
    assert refused(s, host="10.0.0.5:8000") is None
    assert refused(s, host="10.0.0.5:8000", origin="http://localhost:3000") == "origin_not_allowed"
    assert refused(s, host="10.0.0.5:8000", origin="http://10.0.0.5:8000") is None  # its own origin


def test_allowed_hosts_and_origins_add_to_the_defaults():
    s = Settings(allowed_hosts="api.internal.example", mcp_allowed_hosts="mcp.example.org:8443",
                 mcp_allowed_origins="https://claude.ai, http://tools.example.org:3000")
    assert refused(s, host="api.internal.example", origin="http://api.internal.example") is None
    assert refused(s, host="mcp.example.org") is None
    assert refused(s, host="localhost", origin="https://claude.ai") is None
    assert refused(s, host="localhost", origin="https://claude.ai:443") is None
    assert refused(s, host="localhost", origin="http://tools.example.org:3000") is None
    assert refused(s, host="localhost", origin="http://tools.example.org") == "origin_not_allowed"
    assert refused(s, host="api.internal.example", origin="http://mcp.example.org") == "origin_not_allowed"
    anything = Settings(mcp_allowed_hosts="*", mcp_allowed_origins="*")
    assert refused(anything, host=EVIL, origin=f"https://{EVIL}") is None


@pytest_asyncio.fixture
async def live(temporal_address, database_url, tmp_path, temporal_env, db):
    settings = make_settings(temporal_address, database_url, tmp_path, public_url=PUBLIC)
    async with running_stack(settings, temporal_env.client, db, worker=False) as s:
        async with LiveServer(s.app, lifespan="on") as server:
            yield s, server.url


def _error_code(r: httpx.Response) -> str:
    body = r.json()
    assert body["jsonrpc"] == "2.0" and body["id"] is None and body["error"]["code"] == -32000
    assert body["error"]["message"].startswith(body["error"]["data"]["code"] + ": ")
    return body["error"]["data"]["code"]


@pytest.mark.parametrize("headers", [{"Host": EVIL}, {"Origin": f"https://{EVIL}"},
                                     {"Host": EVIL, "Origin": f"http://{EVIL}"}])
async def test_rebinding_requests_are_403_on_every_method(live, user, headers):
    _stack, url = live
    code = "host_not_allowed" if "Host" in headers else "origin_not_allowed"
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for auth in (user.headers, {}):  # refused before authentication: no 401 challenge either
            r = await http.post("/mcp", json=INITIALIZE, headers={**ACCEPT, **auth, **headers})
            assert r.status_code == 403, r.text
            assert r.headers["content-type"] == "application/json"
            assert _error_code(r) == code
        for method in ("GET", "DELETE"):
            r = await http.request(method, "/mcp", headers={**ACCEPT, **user.headers, **headers})
            assert r.status_code == 403 and _error_code(r) == code, (method, r.text)


async def test_allowed_hosts_and_origins_still_work(live, user):
    stack, url = live
    port = url.rsplit(":", 1)[1]
    allowed = [
        {},  # no Origin: a non-browser client
        {"Origin": url},  # the page's own origin
        {"Origin": f"http://localhost:{port}"},
        # Behind the configured public URL, as the reverse proxy forwards it.
        {"Host": "codetether.example.com", "Origin": PUBLIC},
        {"Host": "codetether.example.com:443"},
    ]
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for headers in allowed:
            r = await http.post("/mcp", json=INITIALIZE, headers={**ACCEPT, **user.headers, **headers})
            assert r.status_code == 200, (headers, r.text)
            assert '"serverInfo"' in r.text
        # Unauthenticated from an allowed origin: the usual 401 challenge, naming the public URL.
        r = await http.post("/mcp", json=INITIALIZE, headers={**ACCEPT, "Origin": PUBLIC})
        assert r.status_code == 401
        assert f'resource_metadata="{PUBLIC}/.well-known/oauth-protected-resource"' in r.headers["www-authenticate"]
        # An origin the operator adds.
        r = await http.post("/mcp", json=INITIALIZE, headers={**ACCEPT, **user.headers, "Origin": "https://claude.ai"})
        assert r.status_code == 403
        stack.settings.mcp_allowed_origins = "https://claude.ai"
        r = await http.post("/mcp", json=INITIALIZE, headers={**ACCEPT, **user.headers, "Origin": "https://claude.ai"})
        assert r.status_code == 200, r.text
