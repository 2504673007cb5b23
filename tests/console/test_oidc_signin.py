"""Console single sign-on through an external OIDC issuer, in the browser: the issuer (served on
a loopback port) signs the user in, the console redeems the code with PKCE, checks the ID token's
signature, issuer, audience and nonce, and opens a session for the mapped user."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from urllib.parse import parse_qs, urlencode

import pytest

from tests.conftest import make_settings
from tests.console.conftest import needs_chromium
from tests.oauth.test_oidc import FakeIssuer
from tests.support.live_api import LiveServer

pytestmark = [pytest.mark.e2e, needs_chromium]
CLIENT_ID = "codetether-console"


class SsoIssuer(FakeIssuer):
    """The fake issuer plus an authorization endpoint (the user is already signed in there) and
    a token endpoint that checks the PKCE verifier and answers an ID token carrying the nonce."""

    def __init__(self) -> None:
        super().__init__()
        self.codes: dict[str, dict[str, str]] = {}
        self.key = None

    async def _handle(self, reader, writer) -> None:
        line = (await reader.readline()).decode()
        headers: dict[str, str] = {}
        while (raw := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = raw.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        method, target = line.split(" ")[:2]
        path, _, query = target.partition("?")
        status, body, extra = 200, {}, ""
        if path.endswith("/.well-known/openid-configuration"):
            body = {"issuer": self.issuer, "jwks_uri": f"{self.issuer}/certs",
                    "authorization_endpoint": f"{self.issuer}/auth", "token_endpoint": f"{self.issuer}/token"}
        elif path.endswith("/certs"):
            from joserfc.jwk import KeySet

            body = KeySet(self.keys).as_dict(private=False)
        elif path.endswith("/auth"):
            q = {k: v[0] for k, v in parse_qs(query).items()}
            code = uuid.uuid4().hex
            self.codes[code] = q
            status, extra = 302, f"Location: {q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}\r\n"
        elif path.endswith("/token") and method == "POST":
            form = {k: v[0] for k, v in parse_qs((await reader.readexactly(int(headers["content-length"]))).decode()).items()}
            q = self.codes.pop(form.get("code", ""), None)
            challenge = base64.urlsafe_b64encode(hashlib.sha256(form.get("code_verifier", "").encode()).digest()).decode().rstrip("=")
            if q is None or q["code_challenge"] != challenge or form.get("client_id") != CLIENT_ID:
                status, body = 400, {"error": "invalid_grant"}
            else:
                body = {"access_token": "opaque", "token_type": "Bearer",
                        "id_token": self.token(self.key, aud=CLIENT_ID, nonce=q["nonce"], sub="sso-user-1",
                                               email="sso-person@example.org", scope=None)}
        else:
            status, body = 404, {"error": "not found"}
        raw = json.dumps(body).encode()
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra}Content-Length: {len(raw)}\r\n"
                     f"Connection: close\r\n\r\n".encode() + raw)
        await writer.drain()
        writer.close()


async def test_single_sign_on_through_the_oidc_issuer(console, temporal_address, tmp_path):
    from codetether.api.app import create_app

    issuer = SsoIssuer()
    await issuer.start()
    issuer.key = issuer.new_key("k1")
    settings = make_settings(temporal_address, console.settings.database_url, tmp_path, oidc_issuer=issuer.issuer,
                             oidc_client_id=CLIENT_ID, rate_limit_ip_per_minute=100_000)
    app = create_app(settings, db=console.db, temporal_client=console.client)
    try:
        async with LiveServer(app) as server:
            page = await console.browser.new_page(base_url=server.url)
            page.set_default_timeout(30_000)
            await page.goto("/console/keys")
            await page.get_by_role("link", name="Sign in with single sign-on").click()
            await page.wait_for_url("**/console/keys")
            assert await page.inner_text("#signed-in-as") == "sso-person@example.org"

            # An answer that does not belong to this browser's sign-in is refused.
            await page.context.clear_cookies()
            response = await page.goto("/console/oidc/callback?code=forged&state=forged")
            assert response.status == 400
            assert "Single sign-on did not complete" in await page.inner_text("#error")
            await page.close()
    finally:
        issuer.server.close()
