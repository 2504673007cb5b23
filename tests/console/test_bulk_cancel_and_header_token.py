"""In a real browser: "Cancel selected" on the task list (the bulk cancel service of
``POST /v1/automation/tasks/cancel``, with the console's CSRF token) and a webhook's header token
set, replaced and removed with the service ``PATCH /v1/webhooks/{id}`` uses, as deliveries carry it."""

from __future__ import annotations

import asyncio

import pytest

from tests.console.conftest import needs_chromium, shot
from tests.console.test_task_work import finished, new_task
from tests.support.receiver import Receiver

pytestmark = [pytest.mark.e2e, needs_chromium]


async def test_cancel_selected_cancels_the_ticked_tasks_and_counts_the_skipped(console):
    page = await console.signed_in(await console.user())
    done = await new_task(page, "Quick", "Summarize: quick", tags="batch")
    await finished(page)
    long_ids = []
    for n in (1, 2):
        long_ids.append(await new_task(page, f"Long {n}", "SLEEP: 300", tags="batch"))
    keep = await new_task(page, "Keep running", "SLEEP: 300")
    page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))

    # Nothing ticked: said in the page, nothing is cancelled.
    await page.goto("/console/tasks")
    await page.get_by_role("button", name="Cancel selected").click()
    await page.wait_for_url("**/console/tasks?error=none_selected")
    assert "Select at least one task" in await page.inner_text("#bulk-error")

    # The filter is kept across the post; a finished task ticked is reported as skipped.
    await page.goto("/console/tasks?tag=batch")
    assert await page.locator("#task-table tbody tr").count() == 3
    await page.get_by_label("All on this page").check()
    assert await page.locator('#task-table input[name="task_ids"]:checked').count() == 3
    await page.get_by_label("Select Quick").uncheck()
    assert not await page.get_by_label("All on this page").is_checked()
    await page.get_by_label("Select Quick").check()
    await page.get_by_role("button", name="Cancel selected").click()
    await page.wait_for_url("**/console/tasks?tag=batch&cancelled=2&skipped=1")
    assert await page.inner_text("#bulk-cancelled") == "2 tasks cancelled"
    assert await page.inner_text("#bulk-skipped") == "1 task skipped"
    for task_id in long_ids:
        badge = page.locator(f'#task-table tr[data-task="{task_id}"] .badge')
        assert await badge.get_attribute("data-status") == "cancelled"
    assert await page.locator(f'#task-table tr[data-task="{done}"] .badge').get_attribute("data-status") == "completed"
    await shot(page, "tasks-cancel-selected")

    # The untagged task was not touched; a post without the CSRF token cancels nothing.
    status = await page.evaluate("""async (id) => {
        const body = new URLSearchParams({task_ids: id});
        const r = await fetch("/console/tasks/cancel", {method: "POST", body, credentials: "same-origin"});
        return r.status;
    }""", keep)
    assert status == 403
    await page.goto(f"/console/tasks/{keep}")
    assert await page.locator("#task-panel .badge").get_attribute("data-status") in ("queued", "running")
    await page.get_by_role("button", name="Cancel task").click()
    await finished(page, "cancelled", timeout=30_000)
    await page.context.close()


async def test_another_users_tasks_are_skipped_by_cancel_selected(console):
    alice = await console.signed_in(await console.user())
    theirs = await new_task(alice, "Alice's long job", "SLEEP: 300")
    bob = await console.signed_in(await console.user())
    await new_task(bob, "Bob's job", "Summarize: b")
    await bob.goto("/console/tasks")
    token = await bob.locator("#bulk-cancel input[name=csrf_token]").get_attribute("value")
    status, url = await bob.evaluate("""async ([id, token]) => {
        const body = new URLSearchParams({task_ids: id, csrf_token: token});
        const r = await fetch("/console/tasks/cancel", {method: "POST", body, credentials: "same-origin"});
        return [r.status, r.url];
    }""", [theirs, token])
    assert status == 200 and url.endswith("cancelled=0&skipped=1"), url
    await alice.goto(f"/console/tasks/{theirs}")
    assert await alice.locator("#task-panel .badge").get_attribute("data-status") in ("queued", "running")
    await alice.get_by_role("button", name="Cancel task").click()
    await finished(alice, "cancelled", timeout=30_000)
    await alice.context.close()
    await bob.context.close()


async def _delivered(page, count: int) -> None:
    for _ in range(150):
        if await page.locator("#deliveries .badge.dl-delivered").count() >= count:
            return
        await asyncio.sleep(0.2)
        await page.reload()
    raise AssertionError(f"{count} deliveries expected")


async def test_the_webhook_header_token_is_set_replaced_and_removed(console):
    page = await console.signed_in(await console.user())
    first, second = "make-shared-token-0001", "make-shared-token-0002"
    page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))
    async with Receiver() as receiver:
        await page.goto("/console/webhooks")
        await page.get_by_label("URL").fill(receiver.url)
        await page.get_by_label("Header name").fill("X-Make-Token")
        await page.get_by_label("Token value").fill(first)
        await page.get_by_role("button", name="Create webhook").click()
        await page.locator("#secret-value").wait_for()
        assert await page.inner_text("#header-token-current") == "X-Make-Token: " + _masked(first)
        assert first not in await page.content()
        await page.get_by_role("button", name="Send test event").click()
        await page.wait_for_url("**notice=*")
        await _delivered(page, 1)
        assert receiver.requests[-1].headers.get("x-make-token") == first

        # Replaced (the name too); the value is never shown again.
        await page.get_by_label("Header name").fill("X-Scenario-Token")
        await page.get_by_label("Token value").fill(second)
        await page.get_by_role("button", name="Replace header token").click()
        await page.wait_for_url("**notice=Header%20token%20saved")
        assert await page.inner_text("#header-token-current") == "X-Scenario-Token: " + _masked(second)
        assert second not in await page.content()
        await shot(page, "webhook-header-token")
        await page.get_by_role("button", name="Send test event").click()
        await page.wait_for_url("**notice=Test*")
        await _delivered(page, 2)
        sent = receiver.requests[-1].headers
        assert sent.get("x-scenario-token") == second and "x-make-token" not in sent

        # The service's rules, shown in the page: a header CodeTether sets itself is refused.
        await page.get_by_label("Header name").fill("Webhook-Signature")
        await page.get_by_label("Token value").fill(second)
        await page.get_by_role("button", name="Replace header token").click()
        assert "is a header CodeTether sets itself" in await page.inner_text(".alert.error")
        await page.get_by_label("Header name").fill("Bad Name")
        await page.get_by_label("Token value").fill(second)
        await page.get_by_role("button", name="Replace header token").click()
        assert "must be a header name" in await page.inner_text(".alert.error")
        assert await page.inner_text("#header-token-current") == "X-Scenario-Token: " + _masked(second)

        await page.get_by_role("button", name="Remove header token").click()
        await page.wait_for_url("**notice=Header%20token%20removed")
        assert await page.inner_text("#header-token-current") == "No header token."
        await page.get_by_role("button", name="Send test event").click()
        await page.wait_for_url("**notice=Test*")
        await _delivered(page, 3)
        assert "x-scenario-token" not in receiver.requests[-1].headers
    await page.context.close()


def _masked(value: str) -> str:
    from codetether.webhooks.signing import mask_secret

    return mask_secret(value)
