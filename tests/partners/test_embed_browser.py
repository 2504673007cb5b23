"""The embed in a real browser (Debian's chromium driven by Playwright) against the real stack
(Temporal dev server, worker, the API served by uvicorn on http://localhost:APIPORT).

The test plays the partner's backend: it provisions an end user silently (its JWT exchanged at
/oauth/token), asks for an embed session and serves a page on a loopback origin registered for the
partner, http://127.0.0.1:PORT, with ``<codetether-tasks client-secret="...">``. In the frame the
person starts a task whose demo model asks a question, answers it there, and the host page gets
``codetether:task-created``, ``codetether:needs-input`` and ``codetether:completed``. Before the
secret expires the element renews it through the partner's ``session-url``, and at once when a
call is refused. The same page on an origin the partner did not register cannot frame it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sqlalchemy import update

from codetether.core.ids import utcnow
from codetether.core.models import PartnerEmbedSession
from tests.conftest import wait_status
from tests.console.conftest import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from tests.partners.conftest import (
    client_credentials,
    embed_session,
    exchanged_end_user,
)
from tests.support.live_api import LiveServer

pytestmark = needs_chromium
EVENTS = ("codetether:task-created", "codetether:needs-input", "codetether:completed")
QUESTION = "Which colour should the chart use?"


def partner_page(api_base: str, secret: str) -> bytes:
    listeners = "".join(
        f'document.addEventListener("{name}", function (e) {{ window.seen.push({{type: e.type, '
        f'task_id: e.detail.task_id, composed: e.composed, bubbles: e.bubbles}}); }});'
        for name in EVENTS
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Acme app</title>
<script>window.seen = [];{listeners}</script>
<script src="{api_base}/embed/v1/codetether.js"></script>
<style>codetether-tasks {{ --codetether-accent: rgb(255, 0, 0); --codetether-height: 700px; }}</style>
</head><body><h1>Acme</h1>
<codetether-tasks client-secret="{secret}" session-url="/codetether/session"></codetether-tasks>
</body></html>""".encode()


class PartnerSite:
    """The partner's web server: one HTML page (set once the embed session exists) on a loopback port."""

    def __init__(self) -> None:
        self.page = b""
        self.renewed: list[str] = []
        self.renewals = 0
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(site.page)))
                self.end_headers()
                self.wfile.write(site.page)

            def do_POST(self):
                site.renewals += 1
                body = json.dumps({"client_secret": site.renewed.pop(0)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def seen(page, kind: str, task_id: str | None = None, timeout: float = 60_000) -> dict:
    await page.wait_for_function(
        "([kind, id]) => window.seen.some(e => e.type === kind && (!id || e.task_id === id))",
        arg=[kind, task_id], timeout=timeout,
    )
    events = await page.evaluate("window.seen")
    return next(e for e in events if e["type"] == kind and (task_id is None or e["task_id"] == task_id))


async def until(check, seconds: float) -> None:
    for _ in range(int(seconds * 20)):
        if check():
            return
        await asyncio.sleep(0.05)
    assert check()


async def expire(db, session_id: str, in_seconds: float = -1) -> None:
    async with db.write_session() as s:
        await s.execute(update(PartnerEmbedSession).where(PartnerEmbedSession.id == session_id)
                        .values(expires_at=utcnow() + timedelta(seconds=in_seconds)))
        await s.commit()


async def created_count(page) -> int:
    return await page.evaluate("window.seen.filter(e => e.type === 'codetether:task-created').length")


async def create_in_frame(page, frame, prompt: str | None, *, created: int) -> None:
    """Starts a task from the frame's form (the prompt already typed when None) and waits for the
    host page's codetether:task-created and the task's card."""
    if prompt is not None:
        await frame.get_by_label("What should be done?").fill(prompt)
    await frame.get_by_role("button", name="Start task").click()
    await page.wait_for_function(
        f"() => window.seen.filter(e => e.type === 'codetether:task-created').length === {created}")
    last = (await page.evaluate("window.seen.filter(e => e.type === 'codetether:task-created')"))[-1]
    await frame.locator(f'li[data-task-id="{last["task_id"]}"]').wait_for()


async def test_partner_page_embeds_tasks_and_answers_inside_the_frame(stack, db, make_partner):
    from playwright.async_api import async_playwright

    http = stack.http
    site, other = PartnerSite(), PartnerSite()
    requests: list[str] = []
    sessions_checked: list[int] = []
    console: list[str] = []
    try:
        async with LiveServer(stack.app) as live:
            # CodeTether on localhost:APIPORT, the partner's page on 127.0.0.1:PORT: two origins.
            api_base = f"http://localhost:{live.port}"
            acme = await make_partner(origins=[site.origin])
            acme.token = await client_credentials(http, acme)
            end_user = await exchanged_end_user(http, acme, "user-42")
            session = await embed_session(http, acme, end_user, max_cost_usd=1.0)
            secret = session["client_secret"]
            # Time passes: 70 s are left, so the element renews it about 10 s after the page loads.
            await expire(db, session["session_id"], in_seconds=70)
            site.page = other.page = partner_page(api_base, secret)
            renewals = [await embed_session(http, acme, end_user, max_cost_usd=1.0) for _ in range(2)]
            site.renewed = [r["client_secret"] for r in renewals]

            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                try:
                    page = await browser.new_page()
                    page.set_default_timeout(60_000)
                    page.on("request", lambda req: requests.append(req.url))
                    page.on("response", lambda r: sessions_checked.append(r.status) if "/embed/v1/session" in r.url else None)
                    await page.goto(site.origin + "/")
                    frame = page.frame_locator("codetether-tasks iframe")
                    # Enabled once the frame has the secret from the element and checked its session.
                    start = frame.get_by_role("button", name="Start task")
                    await frame.locator("#new-task button:enabled").wait_for()
                    await frame.get_by_label("What should be done?").fill(f"ASK: {QUESTION}")
                    await frame.get_by_label("Title (optional)").fill("Chart colours")
                    await frame.get_by_label("Model").select_option("demo")
                    await start.click()

                    created = await seen(page, "codetether:task-created")
                    task_id = created["task_id"]
                    assert task_id.startswith("task_") and created["bubbles"] and created["composed"]
                    await seen(page, "codetether:needs-input", task_id)
                    card = frame.locator(f'li[data-task-id="{task_id}"]')
                    await card.get_by_text(QUESTION).wait_for()
                    await card.get_by_label("Your answer").fill("Blue, like the logo.")
                    await card.get_by_role("button", name="Send answer").click()

                    done = await seen(page, "codetether:completed", task_id, timeout=90_000)
                    assert done["bubbles"] and done["composed"]
                    await frame.locator(f'li[data-task-id="{task_id}"][data-status="completed"]').wait_for()
                    assert await card.locator(".status").inner_text() == "completed"
                    # The element's --codetether-accent reached the frame.
                    assert await start.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(255, 0, 0)"

                    # Before the secret expires the element asks the partner's session-url for a new one
                    # and hands it to the frame, which checks it: the old secret is no longer needed.
                    await until(lambda: site.renewals == 1 and sessions_checked == [200, 200], 60)
                    await expire(db, session["session_id"])
                    await create_in_frame(page, frame, "A second task", created=2)
                    assert site.renewals == 1

                    # A secret refused (expired): the element renews at once; the person tries again.
                    await expire(db, renewals[0]["session_id"])
                    await frame.get_by_label("What should be done?").fill("A third task")
                    await start.click()
                    await until(lambda: site.renewals == 2, 30)
                    await frame.locator("#new-task button:enabled").wait_for()
                    assert await created_count(page) == 2
                    await create_in_frame(page, frame, None, created=3)

                    # The host page cannot reach into the frame (another origin).
                    assert await page.evaluate(
                        "() => document.querySelector('codetether-tasks').shadowRoot.querySelector('iframe')"
                        ".contentDocument") is None

                    # The same page on an origin the partner did not register: the browser refuses the frame.
                    blocked = await browser.new_page()
                    blocked.on("console", lambda msg: console.append(msg.text))
                    await blocked.goto(other.origin + "/")
                    await blocked.wait_for_timeout(3000)
                    [inner] = [f for f in blocked.frames if f != blocked.main_frame]
                    assert await inner.query_selector("#new-task") is None
                    assert await blocked.evaluate("window.seen") == []
                    assert any("frame-ancestors" in line for line in console), console
                finally:
                    await browser.close()
    finally:
        site.close()
        other.close()

    # What the browser did in the frame is what the API shows for the end user.
    task = await wait_status(http, task_id, acme.acting(end_user), {"completed"}, timeout=30)
    assert task["title"] == "Chart colours" and task["model"] == "demo" and task["max_cost_usd"] == 1.0
    events = (await http.get(f"/v1/automation/tasks/{task_id}/events", headers=acme.acting(end_user))).json()["data"]
    [message] = [e for e in events if e["event"] == "task.message"]
    assert message["message"]["text"] == "Blue, like the logo." and message["message"]["via"] == "api"
    # The secrets never travelled in a URL; the frame's URL holds only the public session id.
    secrets = [secret] + [r["client_secret"] for r in renewals]
    assert requests and not any(x.split(".")[1] in url for url in requests for x in secrets)
    assert f"{api_base}/embed/v1/frame/{session['session_id']}" in requests
