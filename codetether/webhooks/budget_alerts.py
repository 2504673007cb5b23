"""``budget.threshold_reached``: the account's subscriptions hear when the month's settled spend
reaches 50, 80 and 100 % of its limit.

Checked after every settled model turn (``AgentActivities.model_turn``) and after a limit change
(``PUT /v1/automation/budget``). Each threshold is published once per month *and limit*: the event
key names both, so a retried turn never repeats one, and raising the limit re-arms them.
"""

from __future__ import annotations

from temporalio.client import Client

from codetether.budgets.ledger import month_bounds, user_limit, user_spend
from codetether.budgets.periods import reached
from codetether.core.config import Settings
from codetether.core.db import Database
from codetether.core.ids import iso, utcnow
from codetether.webhooks.account_events import publish_account_event

BUDGET_THRESHOLD_EVENT = "budget.threshold_reached"


class BudgetAlerts:
    def __init__(self, db: Database, settings: Settings, client: Client) -> None:
        self.db = db
        self.settings = settings
        self.client = client

    async def check(self, user_id: str) -> list[int]:
        """Publishes the thresholds reached this month; returns them."""
        start, end = month_bounds(utcnow())
        async with self.db.session() as s:
            limit, on_exhaust = await user_limit(s, self.settings, user_id)
            if not limit or limit <= 0:
                # No limit, no thresholds: the common case after a turn costs one query.
                return []
            spent, reserved = await user_spend(s, user_id, start, end)
        hits = reached(limit, spent)
        for pct in hits:
            data = {"threshold_pct": pct, "period": "month", "limit_usd": limit, "spent_usd": round(spent, 10),
                    "reserved_usd": round(reserved, 10), "remaining_usd": round(max(limit - spent - reserved, 0.0), 10),
                    "period_start": iso(start), "period_end": iso(end), "on_exhaust": on_exhaust}
            await publish_account_event(self.db, self.client, self.settings, user_id=user_id,
                                        event_type=BUDGET_THRESHOLD_EVENT, key=f"{iso(start)}:{limit!r}:{pct}", data=data)
        return hits
