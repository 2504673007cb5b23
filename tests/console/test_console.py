"""The web console in a real browser, each flow of the issue: sign in and create a key that
works on ``/me``; a task that asks a question, followed live and answered in the page; cancel;
webhooks with a delivery attempt and a redelivery; revoking a connected app; lockout after
failed sign-ins (shared with the OAuth sign-in page); CSRF; another user's objects are 404."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from codetether.accounts.oauth_clients import create_oauth_client
from tests.console.conftest import (
    LOCKOUT_SECONDS,
    MAX_FAILURES,
    PASSWORD,
    needs_chromium,
    shot,
    sign_in,
)
from tests.support.receiver import Receiver

pytestmark = [pytest.mark.e2e, needs_chromium]


async def _new_task(page, title: str, description: str) -> str:
    await page.goto("/console/tasks/new")
    await page.get_by_label("Title").fill(title)
    await page.get_by_label("What should the agent do?").fill(description)
    await page.get_by_role("button", name="Create task").click()
    await page.wait_for_url(re.compile(r".*/console/tasks/task_[0-9A-Za-z]+$"))
    return page.url.rsplit("/", 1)[1]


async def _status(page) -> str:
    return (await page.locator("#task-panel .badge").first.get_attribute("data-status")) or ""


async def test_sign_in_create_a_key_and_call_me_with_it(console):
    email = await console.user(via_cli=True)
    page = await console.page()
    await page.goto("/console/keys")
    await page.wait_for_url("**/console/login?next=*")  # not signed in yet
    await shot(page, "login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/console/keys")
    assert await page.inner_text("#signed-in-as") == email

    await page.get_by_label("Name").fill("n8n production")
    await page.get_by_role("button", name="Create key").click()
    key = (await page.inner_text("#new-key-value")).strip()
    assert key.startswith("ct_")
    await shot(page, "api-keys")
    async with console.http() as http:
        me = await http.get("/v1/automation/me", headers={"Authorization": f"Bearer {key}"})
        assert me.status_code == 200, me.text
        assert me.json()["email"] == email and me.json()["auth_method"] == "api_key"
        assert "tasks:write" in me.json()["scopes"]

    # Shown once: the list shows only the prefix, and reloading does not show the key again.
    await page.goto("/console/keys")
    assert key not in await page.content()
    row = page.locator("#key-table tr", has_text="n8n production")
    assert key[:10] in await row.inner_text()
    assert "never" not in await row.inner_text()  # the /me call above used it
    page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))
    await row.get_by_role("button", name="Revoke").click()
    await page.wait_for_load_state()
    assert await page.locator("#key-table tr", has_text="n8n production").count() == 0
    async with console.http() as http:
        assert (await http.get("/v1/automation/me", headers={"Authorization": f"Bearer {key}"})).status_code == 401

    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/console/login")
    await page.goto("/console/tasks")
    await page.wait_for_url("**/console/login?next=*")
    await page.context.close()


async def test_a_question_shows_up_live_and_is_answered_in_the_page(console):
    email = await console.user()
    page = await console.signed_in(email)
    task_id = await _new_task(page, "Paint the shed", "ASK: Which colour should the shed be?")
    # Marks this document: if the page reloaded, the mark would be gone.
    await page.evaluate("window.__sameDocument = true")
    answer = page.get_by_label("Answer")
    await answer.wait_for(state="visible", timeout=60_000)
    assert await page.evaluate("window.__sameDocument === true")
    assert await _status(page) == "needs_input"
    assert "Which colour should the shed be?" in await page.inner_text("#question-prompt")
    assert await page.locator("#events li", has_text="task.needs_input").count() == 1
    await shot(page, "task-needs-input")

    await answer.fill("Forest green")
    await page.get_by_role("button", name="Send answer").click()
    await page.locator("#task-panel .badge[data-status=completed]").wait_for(timeout=60_000)
    assert "Forest green" in await page.inner_text("#task-result")
    await page.locator("#events li", has_text="task.completed").wait_for()
    await shot(page, "task-completed")

    async with console.http() as http:
        key = await _api_key(page)
        got = (await http.get(f"/v1/automation/tasks/{task_id}", headers={"Authorization": f"Bearer {key}"})).json()
    assert got["status"] == "completed" and got["required_action"] is None

    await page.goto("/console/tasks")
    assert await page.locator("#task-table tr", has_text="Paint the shed").count() == 1
    await page.goto("/console/tasks?status=failed")
    assert await page.locator("#task-table").count() == 0
    await page.goto("/console/tasks?status=completed")
    await shot(page, "tasks")
    assert await page.locator("#task-table tr", has_text="Paint the shed").count() == 1
    await page.context.close()


async def test_options_are_buttons_and_a_schema_is_a_form(console):
    email = await console.user()
    page = await console.signed_in(email)
    await _new_task(page, "Paint the fence", "ASK: Which colour? [red|forest green]")
    option = page.get_by_role("button", name="forest green")
    await option.wait_for(state="visible", timeout=60_000)
    await option.click()
    await page.locator("#task-panel .badge[data-status=completed]").wait_for(timeout=60_000)
    assert "forest green" in await page.inner_text("#task-result")

    schema = '{"question": "How many coats?", "answer_schema": {"type": "object", "properties": {"coats": {"type": "integer"}}, "required": ["coats"]}}'
    await _new_task(page, "Coats", f"TOOL: ask_user {schema}")
    coats = page.get_by_label("coats")
    await coats.wait_for(state="visible", timeout=60_000)
    await coats.fill("3")
    await page.get_by_role("button", name="Send answer").click()
    await page.locator("#task-panel .badge[data-status=completed]").wait_for(timeout=60_000)
    assert '{"coats":3}' in await page.inner_text("#task-result")
    await page.context.close()


async def _api_key(page) -> str:
    await page.goto("/console/keys")
    await page.get_by_label("Name").fill("test")
    await page.get_by_role("button", name="Create key").click()
    return (await page.inner_text("#new-key-value")).strip()


async def test_cancel_a_running_task(console):
    email = await console.user()
    page = await console.signed_in(email)
    await _new_task(page, "Long job", "SLEEP: 120")
    await page.locator("#task-panel .badge[data-status=running]").wait_for(timeout=60_000)
    await page.get_by_role("button", name="Cancel task").click()
    await page.locator("#task-panel .badge[data-status=cancelled]").wait_for(timeout=30_000)
    assert await page.get_by_role("button", name="Cancel task").count() == 0
    await page.context.close()


async def test_webhook_delivery_attempt_and_redeliver(console):
    email = await console.user()
    page = await console.signed_in(email)
    async with Receiver() as receiver:
        await page.goto("/console/webhooks")
        await page.get_by_label("URL").fill(receiver.url)
        await page.get_by_label("Description").fill("Make scenario")
        await page.get_by_role("button", name="Create webhook").click()
        secret = (await page.inner_text("#secret-value")).strip()
        assert secret.startswith("whsec_")
        await page.get_by_role("button", name="Send test event").click()
        await page.wait_for_url("**notice=*")
        for _ in range(100):
            if await page.locator("#deliveries .badge.dl-delivered").count():
                break
            await asyncio.sleep(0.2)
            await page.reload()
        row = page.locator("#deliveries tr.delivery").first
        assert "ping" in await row.inner_text()
        assert "#1 · 200" in await row.inner_text()
        await shot(page, "webhook")
        await row.get_by_role("button", name="Redeliver").click()
        await page.wait_for_url("**notice=Redelivery*")
        for _ in range(100):
            if await page.locator("#deliveries .badge.dl-delivered").count() == 2:
                break
            await asyncio.sleep(0.2)
            await page.reload()
        assert await page.locator("#deliveries .badge.dl-delivered").count() == 2
        assert "redelivery" in await page.locator("#deliveries tr.delivery").first.inner_text()
        assert len(receiver.requests) == 2
        ids = {r.headers["webhook-id"] for r in receiver.requests}
        assert len(ids) == 1  # the same event id on the redelivery

        # Disabled: the log stays, redelivery is refused until it is enabled again.
        await page.get_by_role("button", name="Disable").click()
        await page.wait_for_url("**notice=Disabled")
        assert await page.inner_text("#wh-status") == "disabled"
        assert await page.locator("button.redeliver:disabled").count() == 2
        await page.get_by_role("button", name="Enable").click()
        await page.wait_for_url("**notice=Enabled")
        assert await page.inner_text("#wh-status") == "active"
        await page.goto("/console/webhooks")
        await shot(page, "webhooks")
        assert await page.locator("#webhook-table tr", has_text="Make scenario").count() == 1
    await page.context.close()


async def test_revoking_a_connected_app_refuses_its_token(console):
    from tests.oauth.conftest import REDIRECT, query_of, sign_in_and_consent

    email = await console.user()
    client = await create_oauth_client(console.db, name="Zapier", redirect_uris=[REDIRECT], public=False,
                                       owner_email=email)
    async with console.http() as http:
        params = {"response_type": "code", "client_id": client["client_id"], "redirect_uri": REDIRECT,
                  "scope": "tasks:read tasks:write", "state": "s1"}
        r = await sign_in_and_consent(http, params, email, PASSWORD)
        assert r.status_code == 302, r.text
        code = query_of(r.headers["location"])["code"]
        tok = (await http.post("/oauth/token", data={"grant_type": "authorization_code", "code": code,
                                                     "redirect_uri": REDIRECT},
                               auth=(client["client_id"], client["client_secret"]))).json()
        bearer = {"Authorization": f"Bearer {tok['access_token']}"}
        assert (await http.get("/v1/automation/me", headers=bearer)).status_code == 200

        page = await console.signed_in(email)
        await page.goto("/console/apps")
        row = page.locator("#grants tr", has_text="Zapier")
        assert "tasks:read" in await row.inner_text() and "tasks:write" in await row.inner_text()
        await shot(page, "connected-apps")
        page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))
        await row.get_by_role("button", name="Revoke access").click()
        await page.wait_for_load_state()
        assert await page.locator("#grants").count() == 0

        assert (await http.get("/v1/automation/me", headers=bearer)).status_code == 401
        r = await http.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]},
                            auth=(client["client_id"], client["client_secret"]))
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    await page.context.close()


async def test_wrong_passwords_lock_the_account_here_and_on_the_oauth_page(console):
    email = await console.user()
    page = await console.page()
    for _ in range(MAX_FAILURES - 1):
        await page.goto("/console/login")
        await page.get_by_label("Email").fill(email)
        await page.get_by_label("Password").fill("wrong password")
        await page.get_by_role("button", name="Sign in").click()
        assert "not correct" in await page.inner_text(".alert.error")
    await page.get_by_label("Password").fill("wrong password")
    await page.get_by_role("button", name="Sign in").click()
    assert "Too many failed sign-ins" in await page.inner_text(".alert.error")
    # Locked: the right password is refused too, here and on the OAuth sign-in page.
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    assert "Too many failed sign-ins" in await page.inner_text(".alert.error")
    async with console.http() as http:
        from tests.oauth.conftest import REDIRECT, csrf_of

        client = await create_oauth_client(console.db, name="Make", redirect_uris=[REDIRECT], public=False,
                                           owner_email=email)
        params = {"response_type": "code", "client_id": client["client_id"], "redirect_uri": REDIRECT,
                  "scope": "tasks:read", "state": "s"}
        r = await http.get("/oauth/authorize", params=params)
        r = await http.post("/oauth/authorize", data={**params, "action": "signin", "csrf_token": csrf_of(r.text),
                                                     "email": email, "password": PASSWORD})
        assert r.status_code == 429 and "Too many failed sign-ins" in r.text and int(r.headers["retry-after"]) >= 1
    # After the configured lockout the right password works again.
    await asyncio.sleep(LOCKOUT_SECONDS + 0.5)
    await sign_in(page, email)
    await page.context.close()


async def test_a_form_post_without_the_csrf_token_is_refused(console):
    email = await console.user()
    page = await console.signed_in(email)
    await page.goto("/console/keys")
    # The same form as the page's, posted by script from the signed-in page without the token.
    status, text = await page.evaluate("""async () => {
        const body = new URLSearchParams({name: "forged", scopes: "tasks:read"});
        const r = await fetch("/console/keys", {method: "POST", body, credentials: "same-origin"});
        return [r.status, await r.text()];
    }""")
    assert status == 403 and "was not sent from this site" in text
    status, _ = await page.evaluate("""async () => {
        const body = new URLSearchParams({name: "forged", scopes: "tasks:read", csrf_token: "made-up"});
        const r = await fetch("/console/keys", {method: "POST", body, credentials: "same-origin"});
        return [r.status, ""];
    }""")
    assert status == 403
    await page.goto("/console/keys")
    assert await page.locator("#key-table tr", has_text="forged").count() == 0
    # Sign-in form too: a post without the token signs nobody in.
    async with console.http() as http:
        r = await http.post("/console/login", data={"email": email, "password": PASSWORD}, follow_redirects=False)
        assert r.status_code == 403 and "ct_console=" not in r.headers.get("set-cookie", "")
    await page.context.close()


async def test_another_users_task_and_webhook_are_404(console):
    alice, bob = await console.user(), await console.user()
    page_a = await console.signed_in(alice)
    task_id = await _new_task(page_a, "Alice's task", "Summarize: private")
    await page_a.goto("/console/webhooks")
    await page_a.get_by_label("URL").fill("http://127.0.0.1:9/hook")
    await page_a.get_by_role("button", name="Create webhook").click()
    webhook_url = page_a.url if "/webhooks/whk_" in page_a.url else None
    webhook_id = (await page_a.inner_text("h1 + .mono")).split(" ")[0]
    page_b = await console.signed_in(bob)
    for path in (f"/console/tasks/{task_id}", f"/console/tasks/{task_id}/panel", f"/console/webhooks/{webhook_id}"):
        response = await page_b.goto(path)
        assert response.status == 404, path
        assert "Not found" in await page_b.inner_text("h1")
    await shot(page_b, "not-found")
    assert "Alice's task" not in await page_b.content()
    page_b.on("dialog", lambda d: asyncio.ensure_future(d.accept()))
    async with httpx.AsyncClient(base_url=console.base) as http:
        # Bob's own session and CSRF token cannot act on Alice's task either.
        cookies = {c["name"]: c["value"] for c in await page_b.context.cookies()}
        await page_b.goto("/console/tasks")
        token = await page_b.locator("input[name=csrf_token]").first.get_attribute("value")
        r = await http.post(f"/console/tasks/{task_id}/cancel", data={"csrf_token": token}, cookies=cookies)
        assert r.status_code == 404
    assert webhook_url is None or webhook_id in webhook_url
    await page_a.context.close()
    await page_b.context.close()


async def test_account_page_shows_limits_and_this_months_usage(console):
    email = await console.user(tier="free")
    page = await console.signed_in(email)
    await _new_task(page, "Count me", "Summarize: usage")
    await page.locator("#task-panel .badge[data-status=completed]").wait_for(timeout=60_000)
    await page.goto("/console/account")
    assert await page.inner_text("#tier") == "Free"
    assert await page.inner_text("#rate-limit") == "60 / min"
    assert await page.inner_text("#concurrency") == "5"
    assert await page.inner_text("#tasks-total") == "1"
    assert "1" in await page.locator("#usage tr", has_text="completed").inner_text()
    await shot(page, "account")
    await page.context.close()
