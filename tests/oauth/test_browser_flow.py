"""The authorization-code flow in a real headless browser: Debian's chromium driven by Playwright,
against the app served by uvicorn on a loopback port, through sign-in and consent, to a loopback
redirect target that captures ``code`` and ``state``. The token is then used on ``/me``, refreshed,
and the old refresh token replayed."""

from __future__ import annotations

import asyncio
import shutil
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import uvicorn

from codetether.accounts.oauth_clients import create_oauth_client
from tests.conftest import make_settings
from tests.oauth.conftest import PASSWORD, pkce_pair


@pytest.fixture
def settings(temporal_address, database_url, tmp_path):
    # No refresh grace period: replaying the rotated refresh token below is a reuse at once
    # (tests/oauth/test_refresh_grace.py covers the window).
    return make_settings(temporal_address, database_url, tmp_path, oauth_refresh_grace_seconds=0)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")


class RedirectCatcher:
    """A loopback HTTP server standing in for the client's redirect URI."""

    def __init__(self) -> None:
        self.hit: asyncio.Future[str] | None = None
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> int:
        self.hit = asyncio.get_running_loop().create_future()
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line = (await reader.readline()).decode()
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        if self.hit is not None and not self.hit.done() and request_line.startswith("GET /callback"):
            self.hit.set_result(request_line.split(" ")[1])
        body = b"<html><body><h1 id=done>Connected</h1></body></html>"
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def _serve(app) -> tuple[uvicorn.Server, asyncio.Task, str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    for _ in range(600):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, task, f"http://127.0.0.1:{port}"


async def test_code_flow_with_pkce_in_a_real_browser(settings, temporal_env, db, person):
    from playwright.async_api import async_playwright

    from codetether.api.app import create_app

    app = create_app(settings, db=db, temporal_client=temporal_env.client)
    server, task, base = await _serve(app)
    catcher = RedirectCatcher()
    cport = await catcher.start()
    redirect_uri = f"http://127.0.0.1:{cport}/callback"
    client = await create_oauth_client(db, name="Zapier", redirect_uris=[redirect_uri], public=True,
                                       owner_email=person.email)
    verifier, challenge = pkce_pair()
    query = urlencode({"response_type": "code", "client_id": client["client_id"], "redirect_uri": redirect_uri,
                       "scope": "tasks:read tasks:write", "state": "xyz-state/42",
                       "code_challenge": challenge, "code_challenge_method": "S256"})
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            try:
                page = await browser.new_page()
                page.set_default_timeout(60_000)
                await page.goto(f"{base}/oauth/authorize?{query}")
                assert "Sign in to CodeTether" in await page.inner_text("h1")
                assert "Zapier" in await page.content()
                await page.fill("#email", person.email)
                await page.fill("#password", "not the password")
                await page.click("#signin")
                assert "not correct" in await page.inner_text(".error")
                await page.fill("#password", PASSWORD)
                await page.click("#signin")
                await page.wait_for_selector("#approve")
                assert await page.inner_text("#signed-in-as") == person.email
                scopes = await page.inner_text("#scopes")
                assert "tasks:read" in scopes and "tasks:write" in scopes and "webhooks:manage" not in scopes
                await page.click("#approve")
                landed = await asyncio.wait_for(catcher.hit, timeout=60)
                await page.wait_for_selector("#done")
                assert page.url.startswith(redirect_uri + "?")
            finally:
                await browser.close()

        q = {k: v[0] for k, v in parse_qs(urlsplit(landed).query).items()}
        assert q["state"] == "xyz-state/42"
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            r = await http.post("/oauth/token", data={"grant_type": "authorization_code", "code": q["code"],
                                                      "redirect_uri": redirect_uri, "client_id": client["client_id"],
                                                      "code_verifier": verifier})
            assert r.status_code == 200, r.text
            tok = r.json()
            me = await http.get("/v1/automation/me", headers={"Authorization": f"Bearer {tok['access_token']}"})
            assert me.status_code == 200, me.text
            assert me.json()["email"] == person.email and me.json()["auth_method"] == "oauth"
            assert me.json()["scopes"] == ["tasks:read", "tasks:write"]

            r = await http.post("/oauth/token", data={"grant_type": "refresh_token", "client_id": client["client_id"],
                                                      "refresh_token": tok["refresh_token"]})
            assert r.status_code == 200, r.text
            rotated = r.json()
            assert rotated["refresh_token"] != tok["refresh_token"]
            r = await http.post("/oauth/token", data={"grant_type": "refresh_token", "client_id": client["client_id"],
                                                      "refresh_token": tok["refresh_token"]})
            assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
            me = await http.get("/v1/automation/me", headers={"Authorization": f"Bearer {rotated['access_token']}"})
            assert me.status_code == 401
    finally:
        await catcher.stop()
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)
