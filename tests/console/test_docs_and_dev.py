"""``/docs`` and ``/redoc`` render from local assets with every non-loopback host blocked, and the
Authorize button's bearer scheme works; ``codetether dev`` prints the console URL and a one-time
sign-in link for the bootstrap user that signs a browser in (once)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from codetether.accounts.service import create_api_key
from tests.console.conftest import ROOT, needs_chromium, shot

pytestmark = [pytest.mark.e2e, needs_chromium]


async def _loopback_only(context) -> list[str]:
    blocked: list[str] = []

    async def handle(route):
        host = urlsplit(route.request.url).hostname
        if host in ("127.0.0.1", "localhost"):
            await route.continue_()
        else:
            blocked.append(route.request.url)
            await route.abort()

    await context.route("**/*", handle)
    return blocked


async def test_docs_render_offline_and_authorize_with_an_api_key(console):
    email = await console.user()
    from codetether.accounts.service import get_user_by_email

    user = await get_user_by_email(console.db, email)
    _row, key = await create_api_key(console.db, user.id)
    context = await console.browser.new_context(base_url=console.base)
    blocked = await _loopback_only(context)
    page = await context.new_page()
    page.set_default_timeout(30_000)
    await page.goto("/docs")
    await page.locator(".opblock").first.wait_for()
    assert await page.locator(".opblock").count() >= 25
    assert await page.locator("#operations-tasks-createTask").count() == 1
    await shot(page, "api-docs")

    await page.get_by_role("button", name="Authorize").first.click()
    modal = page.locator(".modal-ux")
    await modal.wait_for()
    text = await modal.inner_text()
    assert "bearerAuth" in text and "oauth2" in text and "authorizationCode" in text
    bearer = modal.locator(".auth-container", has_text="bearerAuth")
    await bearer.locator("input").first.fill(key)
    await bearer.locator("button.authorize").click()
    await bearer.locator("button", has_text="Logout").wait_for()  # Swagger UI now holds the key
    await modal.locator("button.btn-done").first.click()

    op = page.locator("#operations-account-getMe")
    await op.locator(".opblock-summary").click()
    await op.get_by_role("button", name="Try it out").click()
    await op.get_by_role("button", name="Execute").click()
    status = op.locator(".live-responses-table .response .response-col_status").first
    await status.wait_for()
    assert (await status.inner_text()).strip().startswith("200")
    assert email in await op.locator(".live-responses-table").inner_text()

    await page.goto("/redoc")
    await page.locator("h1", has_text="CodeTether API").first.wait_for()
    await page.locator("h2", has_text="Create a task").first.wait_for()
    # Nothing was even attempted beyond loopback (the pages' CSP allows only their own origin).
    assert blocked == []
    await context.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_dev_prints_a_one_time_console_sign_in_link(console, tmp_path):
    api, temporal, ui = _free_port(), _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODETETHER_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "codetether.cli", "dev", "--api-port", str(api), "--temporal-port", str(temporal),
         "--ui-port", str(ui), "--data-dir", str(tmp_path / "data")],
        cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        def read_banner() -> None:
            for line in proc.stdout:
                lines.append(line)
                if "Ctrl-C stops everything" in line:
                    return

        await asyncio.wait_for(asyncio.to_thread(read_banner), 180)
        out = "".join(lines)
        assert f"Console       http://127.0.0.1:{api}/console" in out, out
        link = re.search(r"Sign in\s+(http://127\.0\.0\.1:\d+/console/link/\S+)", out).group(1)
        assert re.search(r"API key\s+ct_", out)

        page = await console.browser.new_page()
        page.set_default_timeout(30_000)
        await page.goto(link)
        await page.get_by_role("button", name="Continue to the console").click()
        await page.wait_for_url("**/console/tasks")
        assert await page.inner_text("#signed-in-as") == "admin@codetether.local"
        await page.context.clear_cookies()
        await page.goto(link)
        await page.get_by_role("button", name="Continue to the console").click()
        assert "has been used" in await page.inner_text(".alert.error")
        await page.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)
