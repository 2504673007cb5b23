"""Reply links for questions with options and for plan approvals (CONTRACT §12): the page shows a
button per option, or the plan rendered from Markdown with Approve and Reject; JSON callers send
``choice`` / ``decision``; a per-answer link (``?choice=`` / ``?decision=``, as in the email) only
asks to confirm. The browser parts run Debian's chromium through Playwright."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from tests.agent.repos import make_bare_repo
from tests.conftest import wait_status
from tests.replies.conftest import link_path
from tests.replies.test_reply_page import _serve

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TASKS = "/v1/automation/tasks"


async def _waiting(stack, user, **body) -> dict:
    r = await stack.http.post(TASKS, json={"title": "Paint the shed", **body}, headers=user.headers)
    assert r.status_code == 201, r.text
    return await wait_status(stack.http, r.json()["task_id"], user.headers, {"needs_input", "failed"}, timeout=90)


async def test_json_choice_and_confirm_page(stack, user):
    task = await _waiting(stack, user, description="ASK: Which color? [red|green|blue]")
    path = link_path(task["required_action"]["reply_url"])
    page = await stack.http.get(path)
    assert page.status_code == 200
    assert page.text.count("class=option>") == 3 and "value='green'" in page.text
    confirm = await stack.http.get(path, params={"choice": "blue"})
    assert "id=confirm" in confirm.text and "Confirm: blue" in confirm.text
    # A value that is not an option is not offered for confirmation.
    assert "id=confirm" not in (await stack.http.get(path, params={"choice": "<b>"})).text

    r = await stack.http.post(path, json={"choice": "purple"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_choice", r.text
    r = await stack.http.post(path, json={"choice": "blue"})
    assert r.status_code == 200 and r.json()["answered"] is True, r.text
    done = await wait_status(stack.http, task["task_id"], user.headers, {"completed", "failed"})
    assert "Thanks, noted: blue." in done["result"], done


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
async def test_options_and_a_plan_approval_in_a_browser(stack, user, tmp_path):
    from playwright.async_api import async_playwright

    stack.settings.codebase_allow_local = True
    bare, _base = make_bare_repo(tmp_path)
    r = await stack.http.post("/v1/automation/codebases", json={"name": "web", "repository_url": str(bare)},
                              headers=user.headers)
    assert r.status_code == 201, r.text
    cb = r.json()["codebase_id"]
    question = await _waiting(stack, user, description="ASK: Which color? [red|green|blue]")
    plan_task = await _waiting(
        stack, user, codebase_id=cb, require_approval="plan", title="Greet",
        description="PLAN: # Greeting plan\nPLAN: - change **app.py**\nEDIT: app.py :: return 'hello' :: return 'hi'",
    )
    assert plan_task["required_action"]["kind"] == "approval", plan_task

    server, serving, base = await _serve(stack.app)
    external: list[str] = []
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM, headless=True,
                args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            try:
                page = await browser.new_page()
                page.set_default_timeout(60_000)
                page.on("request", lambda req: external.append(req.url) if not req.url.startswith(base) else None)

                await page.goto(base + link_path(question["required_action"]["reply_url"]))
                assert await page.inner_text("#question") == "Which color?"
                await page.get_by_role("button", name="green").click()
                await page.wait_for_selector("#outcome")
                assert "your answer was sent" in await page.inner_text("#outcome")

                await page.goto(base + link_path(plan_task["required_action"]["reply_url"]))
                assert await page.inner_text("#plan h1") == "Greeting plan"
                assert await page.inner_text("#plan strong") == "app.py"
                await page.get_by_label("Comments").fill("PLAN: # Greeting plan, take two")
                await page.get_by_role("button", name="Reject").click()
                await page.wait_for_selector("#outcome")
                assert "your answer was sent" in await page.inner_text("#outcome")

                loop = asyncio.get_running_loop()
                deadline = loop.time() + 90
                while True:
                    again = (await stack.http.get(f"{TASKS}/{plan_task['task_id']}", headers=user.headers)).json()
                    action = again["required_action"]
                    if again["status"] == "needs_input" and action["id"] != plan_task["required_action"]["id"]:
                        break
                    assert loop.time() < deadline, again
                    await asyncio.sleep(0.1)
                await page.goto(base + link_path(action["reply_url"]))
                assert await page.inner_text("#plan h1") == "Greeting plan, take two"
                await page.get_by_role("button", name="Approve").click()
                await page.wait_for_selector("#outcome")
                assert "your answer was sent" in await page.inner_text("#outcome")
            finally:
                await browser.close()
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, timeout=30)

    assert external == []
    done = await wait_status(stack.http, question["task_id"], user.headers, {"completed", "failed"})
    assert "Thanks, noted: green." in done["result"], done
    built = await wait_status(stack.http, plan_task["task_id"], user.headers, {"completed", "failed"}, timeout=120)
    assert built["status"] == "completed", built
    assert [f["path"] for f in built["changes"]["files"]] == ["app.py"]
