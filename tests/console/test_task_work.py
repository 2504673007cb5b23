"""The console shows a task's work, in a real browser: the patch as a coloured diff that
downloads; artifacts served with the console session (owner only); progress messages in the event
log; ``result_json`` as a table; tags as chips that filter the list; the reply link of a question;
and the New Task form's tags and output schema, refused by the service's rules in the form."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from codetether.accounts.service import get_user_by_email
from codetether.codebases.service import create_codebase
from tests.agent.repos import make_bare_repo
from tests.console.conftest import needs_chromium, shot

pytestmark = [pytest.mark.e2e, needs_chromium]

TASK_URL = re.compile(r".*/console/tasks/task_[0-9A-Za-z]+$")


async def new_task(page, title: str, description: str, *, agent_type: str | None = None, codebase: str | None = None,
                   tags: str | None = None, output_schema: str | None = None) -> str:
    await page.goto("/console/tasks/new")
    await page.get_by_label("Title").fill(title)
    await page.get_by_label("What should the agent do?").fill(description)
    if agent_type:
        await page.get_by_label("Agent type").select_option(agent_type)
    if codebase:
        await page.get_by_label("Codebase").select_option(label=codebase)
    if tags is not None:
        await page.get_by_label("Tags").fill(tags)
    if output_schema is not None:
        await page.get_by_label("Output schema (JSON)").fill(output_schema)
    await page.get_by_role("button", name="Create task").click()
    await page.wait_for_url(TASK_URL)
    return page.url.rsplit("/", 1)[1]


async def finished(page, status: str = "completed", timeout: float = 120_000) -> None:
    await page.locator(f"#task-panel .badge[data-status={status}]").wait_for(timeout=timeout)


async def test_the_patch_is_a_coloured_diff_that_downloads_and_artifacts_open_with_the_session(console, tmp_path):
    email = await console.user()
    user = await get_user_by_email(console.db, email)
    bare, _ = make_bare_repo(tmp_path)
    await create_codebase(console.db, console.settings, user.id, name="web", repository_url=str(bare))
    page = await console.signed_in(email)
    prompt = "\n".join([
        "READ: app.py",
        "EDIT: app.py :: return 'hello' :: return 'hello, world'",
        "WRITE: NOTES.md :: Greeting <b>changed</b> & <script>window.__injected = 1</script>\\n",
    ])
    task_id = await new_task(page, "Greet the world", prompt, agent_type="build", codebase="web")
    await finished(page)

    # The diff: one table per file, line numbers, added lines coloured by Pygments' token classes.
    diff = page.locator("#diff")
    await diff.wait_for()
    app_py = diff.locator('.diff-file[data-path="app.py"]')
    assert "modified" in await app_py.locator(".diff-file-head").inner_text()
    added = app_py.locator("tr.add", has_text="hello, world")
    removed = app_py.locator("tr.del", has_text="'hello'")
    assert await added.count() == 1 and await removed.count() == 1
    assert (await added.locator("td.ln").nth(1).inner_text()).strip() == "2"
    keyword = added.locator("span.k", has_text="return")
    string = added.locator("span.s1", has_text="'hello, world'")
    assert await keyword.count() == 1 and await string.count() == 1
    colours = await page.evaluate("""() => {
        const c = (sel) => getComputedStyle(document.querySelector(sel)).color;
        return [c('#diff tr.add span.k'), c('#diff tr.add span.s1'), getComputedStyle(document.querySelector('#diff tr.add td.code')).backgroundColor];
    }""")
    assert colours[0] != colours[1] and colours[2] != "rgba(0, 0, 0, 0)", colours
    # Text from the patch is text: the HTML in NOTES.md is shown, never run or parsed.
    notes = diff.locator('.diff-file[data-path="NOTES.md"]')
    assert "added" in await notes.locator(".diff-file-head").inner_text()
    assert "<script>window.__injected = 1</script>" in await notes.locator("tr.add").first.inner_text()
    assert await diff.locator("script, b").count() == 0
    assert await page.evaluate("window.__injected === undefined")
    await shot(page, "task-diff")

    # The patch downloads with the session; the artifact links are the console's, not the API's.
    async with page.expect_download() as info:
        await page.locator("#download-patch").click()
    download = await info.value
    assert download.suggested_filename == "changes.patch"
    body = open(await download.path(), encoding="utf-8").read()
    assert "+    return 'hello, world'" in body and "NOTES.md" in body
    hrefs = await page.locator("#artifacts a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert hrefs and all(h.startswith(f"/console/tasks/{task_id}/artifacts/") for h in hrefs), hrefs

    # "Open" shows a text artifact in the browser as plain text under a policy that runs nothing.
    view = await page.locator("#artifacts a.open", has_text="changes.patch").get_attribute("href")
    response = await page.goto(view)
    assert response.status == 200
    headers = response.headers
    assert headers["content-type"].startswith("text/plain")
    assert headers["content-disposition"] == 'inline; filename="changes.patch"'
    assert headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in headers["content-security-policy"] and "default-src 'none'" in headers["content-security-policy"]
    assert "<script>window.__injected = 1</script>" in await page.locator("body").inner_text()
    assert await page.evaluate("window.__injected === undefined")
    download_href = view.removesuffix("?view=1")
    r = await page.request.get(download_href)
    assert r.status == 200 and r.headers["content-disposition"] == 'attachment; filename="changes.patch"'

    # Not with another user's session (404), nor without one (sent to sign in); the API route still wants a token.
    other = await console.signed_in(await console.user())
    response = await other.goto(download_href)
    assert response.status == 404 and "Not found" in await other.inner_text("h1")
    async with httpx.AsyncClient(base_url=console.base) as http:
        r = await http.get(download_href)
        assert r.status_code == 303 and "/console/login" in r.headers["location"]
        assert (await http.get(download_href.replace("/console/", "/v1/automation/"))).status_code == 401

    # Progress rows carry their message: after a reload (server-rendered) ...
    await page.goto(f"/console/tasks/{task_id}")
    messages = await page.locator("#events li .emsg").all_inner_texts()
    assert any(m.startswith("edit: app.py") for m in messages), messages
    assert any(m.startswith("write: NOTES.md") for m in messages) or len(messages) >= 2, messages
    await other.context.close()
    await page.context.close()


async def test_progress_messages_arrive_live_in_the_event_log(console):
    page = await console.signed_in(await console.user())
    await new_task(page, "Slow one", "SLEEP: 1")
    await page.evaluate("window.__sameDocument = true")
    await page.locator("#events li", has_text="task.progress").locator(".emsg", has_text="working for 1 s").wait_for(timeout=60_000)
    await finished(page)
    assert await page.evaluate("window.__sameDocument === true")
    # Rows added by the page's script and rows rendered by the server say the same.
    live = await page.locator("#events li .emsg").all_inner_texts()
    await page.reload()
    assert await page.locator("#events li .emsg").all_inner_texts() == live
    await page.context.close()


SCHEMA = {
    "type": "object",
    "properties": {
        "verdict": {"enum": ["approve", "reject"]},
        "score": {"type": "integer", "minimum": 7},
        "labels": {"type": "array", "items": {"enum": ["urgent"]}},
        "meta": {"type": "object", "properties": {"source": {"const": "console"}}},
    },
    "required": ["verdict", "score", "labels", "meta"],
}


async def test_result_json_table_tags_as_chips_and_the_tag_filter(console):
    page = await console.signed_in(await console.user())
    other = await new_task(page, "Untagged", "Summarize: nothing")
    task_id = await new_task(page, "Review the contract", "Summarize: the renewal clause",
                             tags="legal, customer:acme legal", output_schema=json.dumps(SCHEMA, indent=2))
    await finished(page)
    table = page.locator("#result-json")
    row = lambda key: table.locator("tr", has=page.locator("th", has_text=key))  # noqa: E731
    assert (await row("verdict").locator("td").inner_text()).strip() == "approve"
    assert (await row("score").locator("td").inner_text()).strip() == "7"
    assert json.loads(await row("meta").locator("pre").inner_text()) == {"source": "console"}
    assert json.loads(await row("labels").locator("pre").inner_text()) == ["urgent"]
    assert await page.locator("#task-tags a.chip").all_inner_texts() == ["legal", "customer:acme"]
    assert (await page.inner_text("#attachments")).strip() == "None"  # created without input files
    await shot(page, "task-structured-result")

    # A chip filters the list by its tag; the list shows the chips too.
    await page.locator("#task-tags a.chip", has_text="customer:acme").click()
    await page.wait_for_url("**/console/tasks?tag=customer%3Aacme")
    assert await page.get_by_label("Tag").input_value() == "customer:acme"
    rows = page.locator("#task-table tbody tr")
    assert await rows.count() == 1 and await rows.first.get_attribute("data-task") == task_id
    await rows.first.locator("a.chip", has_text="legal").click()
    await page.wait_for_url("**/console/tasks?tag=legal")
    assert await page.locator(f'#task-table tr[data-task="{other}"]').count() == 0
    await page.goto("/console/tasks")
    assert await page.locator(f'#task-table tr[data-task="{other}"]').count() == 1
    response = await page.goto("/console/tasks?tag=not%20a%20tag")
    assert response.status == 422
    await page.context.close()


async def test_the_new_task_form_refuses_bad_tags_and_schemas_with_the_services_rules(console):
    page = await console.signed_in(await console.user())

    async def refused(tags: str, schema: str) -> str:
        await page.goto("/console/tasks/new")
        await page.get_by_label("Title").fill("Checked")
        await page.get_by_label("What should the agent do?").fill("Summarize: x")
        await page.get_by_label("Tags").fill(tags)
        await page.get_by_label("Output schema (JSON)").fill(schema)
        await page.get_by_role("button", name="Create task").click()
        await page.locator(".alert.error").wait_for()
        # The form keeps what was typed.
        assert await page.get_by_label("Tags").input_value() == tags
        assert await page.get_by_label("Output schema (JSON)").input_value() == schema
        return await page.inner_text(".alert.error")

    assert "is not a tag" in await refused("ok, not/ok", "")
    assert "at most 20 tags" in await refused(" ".join(f"t{i}" for i in range(21)), "")
    assert "not valid JSON" in await refused("fine", "{not json")
    assert "the root must be" in await refused("fine", '{"type": "string"}')
    assert "JSON Schema" in await refused("fine", '{"type": "object", "properties": {"a": {"type": 12}}}')
    await page.goto("/console/tasks")
    assert await page.locator("#task-table").count() == 0  # nothing was created
    await page.context.close()


async def test_a_question_shows_its_reply_link(console):
    page = await console.signed_in(await console.user())
    task_id = await new_task(page, "Ask me", "ASK: Which branch should I use?")
    link = page.locator("#reply-url")
    await link.wait_for(timeout=60_000)
    reply_url = await link.get_attribute("href")
    assert re.search(r"/r/[A-Za-z0-9_.\-]+$", reply_url), reply_url
    assert await link.inner_text() == reply_url
    # The same link the API shows, and it opens the question's reply page.
    key_page = await page.context.new_page()
    await key_page.goto("/console/keys")
    await key_page.get_by_label("Name").fill("t")
    await key_page.get_by_role("button", name="Create key").click()
    key = (await key_page.inner_text("#new-key-value")).strip()
    async with httpx.AsyncClient(base_url=console.base) as http:
        got = (await http.get(f"/v1/automation/tasks/{task_id}", headers={"Authorization": f"Bearer {key}"})).json()
        assert got["required_action"]["reply_url"] == reply_url
        r = await http.get("/r/" + reply_url.rsplit("/r/", 1)[1])
        assert r.status_code == 200 and "Which branch should I use?" in r.text
    await page.context.close()
