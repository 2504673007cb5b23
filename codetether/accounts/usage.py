"""An account's limits and this month's usage, for the console's Account page."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from codetether.accounts.service import TIER_CONCURRENCY, TIER_RATE_LIMITS
from codetether.core.db import Database
from codetether.core.ids import utcnow
from codetether.core.models import Task
from codetether.tasks.contracts import TaskStatus


@dataclass
class Usage:
    tier: str
    rate_limit_per_minute: int | None
    concurrent_tasks_limit: int | None
    month: str
    tasks_by_status: dict[str, int] = field(default_factory=dict)

    @property
    def tasks_total(self) -> int:
        return sum(self.tasks_by_status.values())


async def account_usage(db: Database, user_id: str, tier: str) -> Usage:
    now = utcnow()
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    async with db.session() as s:
        rows = (await s.execute(
            select(Task.status, func.count()).where(Task.user_id == user_id, Task.created_at >= start)
            .group_by(Task.status)
        )).all()
    counts = {st.value: 0 for st in TaskStatus}
    counts.update({status: n for status, n in rows})
    return Usage(tier, TIER_RATE_LIMITS.get(tier, 60), TIER_CONCURRENCY.get(tier, 5), start.strftime("%B %Y"), counts)
