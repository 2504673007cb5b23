"""``sponsorship.threshold_reached`` and ``sponsorship.exhausted``: a partner's subscriptions (owned
by its service account) hear when a sponsorship's settled spend reaches 50, 80 and 100 % of its
limit, and when a turn found no covering sponsorship with room.

Checked after every settled model turn of a partner's end user and after each refused one
(``AgentActivities.model_turn``, wired by the worker), and after a limit change
(``PATCH /v1/partner/sponsorships/{id}``). Each event is published once per sponsorship, period
*and limit*: the event key names all three, so a retried turn never repeats one, and raising the
limit re-arms them (as ``budget.threshold_reached`` does for a user's budget).
"""

from __future__ import annotations

from typing import Any

from temporalio.client import Client

from codetether.budgets import sponsored
from codetether.budgets.ledger import BudgetRefused
from codetether.budgets.periods import reached
from codetether.core.config import Settings
from codetether.core.db import Database
from codetether.core.ids import utcnow
from codetether.webhooks.account_events import publish_account_event

THRESHOLD_EVENT = "sponsorship.threshold_reached"
EXHAUSTED_EVENT = "sponsorship.exhausted"


def _occurrence(view: dict[str, Any]) -> str:
    return f"{view['sponsorship_id']}:{view['period_start']}:{view['limit_usd']!r}"


class SponsorshipAlerts:
    def __init__(self, db: Database, settings: Settings, client: Client) -> None:
        self.db = db
        self.settings = settings
        self.client = client

    async def _thresholds(self, view: dict[str, Any], owner_id: str) -> list[int]:
        hits = reached(view["limit_usd"], view["spent_usd"])
        for pct in hits:
            await publish_account_event(self.db, self.client, self.settings, user_id=owner_id,
                                        event_type=THRESHOLD_EVENT, key=f"{_occurrence(view)}:{pct}",
                                        data={**view, "threshold_pct": pct})
        return hits

    async def check(self, user_id: str) -> dict[str, list[int]]:
        """After a settled turn of ``user_id``: publishes the thresholds reached by the
        sponsorships covering it (none for a user who is no partner's end user)."""
        return {view["sponsorship_id"]: await self._thresholds(view, owner)
                for view, owner in await sponsored.covering_views(self.db, user_id, utcnow())}

    async def check_sponsorship(self, sponsorship_id: str) -> list[int]:
        """After a limit change: a lower limit may put the spend past a threshold at once."""
        found = await sponsored.views_of(self.db, [sponsorship_id], utcnow())
        return await self._thresholds(*found[0]) if found else []

    async def refused(self, refusal: BudgetRefused) -> list[str]:
        """After a refused turn: every sponsorship that had no room for it is exhausted."""
        if refusal.bound != "sponsorship":
            return []
        out = []
        for view, owner in await sponsored.views_of(self.db, refusal.sponsorship_ids, utcnow()):
            await publish_account_event(self.db, self.client, self.settings, user_id=owner, event_type=EXHAUSTED_EVENT,
                                        key=f"{_occurrence(view)}:exhausted", data=view)
            out.append(view["sponsorship_id"])
        return out
