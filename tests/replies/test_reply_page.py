"""The reply-link page in a real headless browser (Debian's chromium driven by Playwright), served
by uvicorn on a loopback port: the person sees the task title and the question, types the answer
in the box labelled "Answer", presses "Send answer", and the model gets it as its tool result.
Opening the link again says the question was already answered."""

from __future__ import annotations

import asyncio
import shutil

import pytest
import uvicorn

from tests.conftest import wait_status
from tests.replies.conftest import link_path
from tests.support.providers import (  # noqa: F401
    anthropic_server,
    openai_server,
    provider_env,
    provider_stack,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")


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


async def test_answer_through_the_page_in_a_browser(provider_stack, user, openai_server):
    from playwright.async_api import async_playwright

    stack = provider_stack
    openai_server.reply_ask_user("Should the report cover Q3 or Q4?").reply_text("Wrote the Q4 report.")
    r = await stack.http.post(
        "/v1/automation/tasks",
        json={"title": "Quarterly <report>", "description": "Write the report.", "model": "gpt-4o"},
        headers=user.headers,
    )
    assert r.status_code == 201, r.text
    task_id = r.json()["task_id"]
    waiting = await wait_status(stack.http, task_id, user.headers, {"needs_input"}, timeout=60)
    path = link_path(waiting["required_action"]["reply_url"])

    server, serving, base = await _serve(stack.app)
    external: list[str] = []
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
                page.on("request", lambda req: external.append(req.url) if not req.url.startswith(base) else None)
                await page.goto(base + path)
                assert await page.inner_text("h1") == "Quarterly <report>"
                assert await page.inner_text("#question") == "Should the report cover Q3 or Q4?"
                await page.get_by_label("Answer").fill("Q4, and compare it with Q3.")
                await page.get_by_role("button", name="Send answer").click()
                await page.wait_for_selector("#outcome")
                assert "your answer was sent" in await page.inner_text("#outcome")

                await page.goto(base + path)
                assert "already answered" in await page.inner_text("#outcome")
                assert await page.query_selector("textarea") is None
            finally:
                await browser.close()
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, timeout=30)

    assert external == []  # the page loads nothing from anywhere else
    done = await wait_status(stack.http, task_id, user.headers, {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed" and done["result"] == "Wrote the Q4 report.", done
    tool_result = openai_server.chat_requests()[1].body["messages"][-1]
    assert tool_result["role"] == "tool" and tool_result["content"] == "Q4, and compare it with Q3."
    r = await stack.http.get(f"/v1/automation/tasks/{task_id}/events", headers=user.headers)
    [msg] = [e for e in r.json()["data"] if e["event"] == "task.message"]
    assert msg["message"]["via"] == "link"
