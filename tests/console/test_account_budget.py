"""The account page's budget in a real browser (CONTRACT §13): this month's spend as a chart, and
the monthly limit set from the page with the same rule as ``PUT /v1/automation/budget``."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from codetether.budgets.service import budget_view
from codetether.core.ids import new_id, utcnow
from codetether.core.models import BudgetCharge, User
from tests.console.conftest import shot

pytestmark = pytest.mark.e2e


async def test_the_account_page_charts_spend_and_sets_the_limit(console):
    email = await console.user()
    async with console.db.session() as s:
        user_id = (await s.execute(select(User.id).where(User.email == email))).scalar_one()
        now = utcnow()
        s.add(BudgetCharge(id=new_id("chg"), user_id=user_id, task_id="task_x", model="gpt-4o", reserved_usd=0.2,
                           cost_usd=0.1234, input_tokens=1000, output_tokens=200, created_at=now, settled_at=now))
        await s.commit()
    page = await console.signed_in(email)
    await page.goto("/console/account")
    assert (await page.inner_text("#budget-limit")).strip() == "No limit"
    assert (await page.inner_text("#budget-spent")).strip() == "$0.1234"
    assert await page.locator("#spend-chart rect.bar").count() == 1

    await page.get_by_label("Monthly limit (USD, empty for none)").fill("abc")
    await page.get_by_role("button", name="Save").click()
    assert "must be a number" in await page.inner_text("#budget")
    assert (await budget_view(console.db, console.settings, user_id))["limit_usd"] is None

    await page.get_by_label("Monthly limit (USD, empty for none)").fill("5")
    await page.get_by_label("When it is reached").select_option("fail")
    await page.get_by_role("button", name="Save").click()
    await page.wait_for_url("**/console/account")
    assert (await page.inner_text("#budget-limit")).strip() == "$5.00"
    assert (await page.inner_text("#budget-remaining")).strip() == "$4.8766"
    await shot(page, "account-budget")
    view = await budget_view(console.db, console.settings, user_id)
    assert view["limit_usd"] == 5 and view["on_exhaust"] == "fail"
    await page.context.close()
