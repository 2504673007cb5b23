"""Open sign-up (``CODETETHER_SIGNUP=open``): with SMTP configured the account exists only once
the emailed link is followed; closed (the default) there is no sign-up page at all."""

from __future__ import annotations

import asyncio
import re

import pytest

from codetether.accounts.service import get_user_by_email
from tests.conftest import make_settings
from tests.console.conftest import PASSWORD, needs_chromium, shot
from tests.notifications.test_email import Inbox, _free_port
from tests.support.live_api import LiveServer

pytestmark = [pytest.mark.e2e, needs_chromium]


async def test_open_signup_verifies_the_email_before_the_account_exists(console, temporal_address, tmp_path):
    from aiosmtpd.controller import Controller

    from codetether.api.app import create_app

    inbox = Inbox()
    inbox.loop = asyncio.get_running_loop()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    settings = make_settings(temporal_address, console.settings.database_url, tmp_path, signup="open",
                             smtp_url=f"smtp://127.0.0.1:{controller.port}", rate_limit_ip_per_minute=100_000)
    app = create_app(settings, db=console.db, temporal_client=console.client)
    email = "new-person@example.com"
    try:
        async with LiveServer(app) as server:
            page = await console.browser.new_page(base_url=server.url)
            page.set_default_timeout(30_000)
            await page.goto("/console/login")
            await page.get_by_role("link", name="Create an account").click()
            await shot(page, "signup")
            await page.get_by_label("Email").fill(email)
            await page.get_by_label("Password").fill(PASSWORD)
            await page.get_by_role("button", name="Create account").click()
            assert "Check your email" in await page.inner_text("h1")
            assert await get_user_by_email(console.db, email) is None

            rcpt, msg = await inbox.next()
            assert rcpt == [email]
            link = re.search(r"http://127\.0\.0\.1:\d+/console/verify/\S+", msg.get_content()).group(0)
            await page.goto(link)
            await page.get_by_label("Password").fill(PASSWORD)
            await page.get_by_role("button", name="Confirm and sign in").click()
            await page.wait_for_url("**/console/tasks")
            assert await page.inner_text("#signed-in-as") == email
            assert (await get_user_by_email(console.db, email)).tier == "free"
            await page.close()
    finally:
        controller.stop()


async def test_signup_is_closed_by_default(console):
    page = await console.page()
    response = await page.goto("/console/signup")
    assert response.status == 404
    await page.goto("/console/login")
    assert await page.get_by_role("link", name="Create an account").count() == 0
    await page.context.close()
