"""The console on a live stack: the app served by uvicorn on a loopback port, a worker on a fresh
task queue, the session's Temporal dev server, a database of its own (sign-in failures are
counted per client IP, so the lockout tests must not lock other suites out), and Debian's
chromium driven by Playwright.

``CODETETHER_CONSOLE_SCREENSHOTS=1`` makes the tests save a PNG of each page under
``docs/console/`` (how the README's screenshots are made).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio

from codetether.accounts.service import create_user
from codetether.core.db import Database, migrate
from tests.conftest import ROOT, make_settings, running_stack
from tests.support.live_api import LiveServer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PASSWORD = "correct horse battery staple"
SHOTS = ROOT / "docs" / "console"
LOCKOUT_SECONDS = 3
MAX_FAILURES = 3

# Applied by each test module (a conftest cannot mark the tests it serves).
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")


@dataclass
class Console:
    base: str
    settings: object
    db: Database
    client: object
    browser: object

    async def user(self, *, tier: str = "pro", via_cli: bool = False) -> str:
        """A new user with PASSWORD; with ``via_cli`` made by ``codetether users create --password-stdin``."""
        email = f"u-{uuid.uuid4().hex[:10]}@example.com"
        if via_cli:
            env = {**os.environ, "CODETETHER_DATABASE_URL": self.settings.database_url,
                   "CODETETHER_DATA_DIR": str(self.settings.data_dir)}
            proc = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-m", "codetether.cli", "users", "create", email, "--tier", tier,
                                 "--password-stdin"],
                input=PASSWORD + "\n", capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
            )
            assert proc.returncode == 0, proc.stderr
        else:
            await create_user(self.db, email, tier=tier, password=PASSWORD)
        return email

    async def page(self):
        context = await self.browser.new_context(base_url=self.base)
        page = await context.new_page()
        page.set_default_timeout(30_000)
        return page

    async def signed_in(self, email: str):
        page = await self.page()
        await sign_in(page, email)
        return page

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, timeout=30)


async def sign_in(page, email: str, password: str = PASSWORD) -> None:
    await page.goto("/console/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/console/tasks")


async def shot(page, name: str) -> None:
    if os.environ.get("CODETETHER_CONSOLE_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        await page.set_viewport_size({"width": 1280, "height": 800})
        await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest_asyncio.fixture(scope="module")
async def console_db(tmp_path_factory) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('console-db') / 'console.db'}"
    await asyncio.to_thread(migrate, url)
    db = Database(url)
    try:
        yield db
    finally:
        await db.dispose()


@pytest_asyncio.fixture(scope="module")
async def console(temporal_env, temporal_address, console_db, tmp_path_factory) -> AsyncIterator[Console]:
    from playwright.async_api import async_playwright

    settings = make_settings(
        temporal_address, str(console_db.engine.url.render_as_string(hide_password=False)),
        tmp_path_factory.mktemp("console"),
        rate_limit_ip_per_minute=100_000, signin_max_failures=MAX_FAILURES, signin_lockout_seconds=LOCKOUT_SECONDS,
        signin_ip_max_failures=1000,
        # Questions carry a reply link; build tasks may work on a local repository (tests/agent/repos.py).
        reply_secret="console-test-reply-secret-0123456789", codebase_allow_local=True,
    )
    async with running_stack(settings, temporal_env.client, console_db) as stack:
        async with LiveServer(stack.app) as server:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                try:
                    yield Console(server.url, settings, console_db, temporal_env.client, browser)
                finally:
                    await browser.close()
