"""What a suggested task may cost and take, from this service's own history (``POST
/v1/partner/guess``, CONTRACT §14).

The rule, kept simple on purpose:

- the history is the :data:`HISTORY_LIMIT` most recently completed tasks (status ``completed``)
  of every account with the suggestion's ``agent_type`` and ``model``;
- of those, a task is *similar* when its title and the start of its instructions share at least
  :data:`MIN_SHARED_WORDS` keywords with the suggestion's title and prompt (fewer when the
  suggestion has fewer keywords); a keyword is a word of three or more letters or digits that is
  not in :data:`STOP_WORDS`, compared in lower case;
- ``cost_usd_p50`` and ``cost_usd_p90`` are the nearest-rank 50th and 90th percentiles of the
  similar tasks' ``usage.cost_usd`` (tasks without a price are left out), ``minutes_p50`` that of
  the minutes from creation to completion. No similar task: all three are null.

Only these aggregates leave the function; the titles and instructions read to match are other
users' and are never returned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import func, select

from codetether.core.db import Database
from codetether.core.ids import as_utc
from codetether.core.models import Task
from codetether.partners.guesser import words
from codetether.tasks.contracts import TaskStatus

HISTORY_LIMIT = 500
MIN_SHARED_WORDS = 2
# The part of a task's instructions compared (the rest rarely changes what kind of task it is).
DESCRIPTION_PREFIX = 1000
STOP_WORDS = frozenset({
    "the", "and", "for", "with", "that", "this", "from", "into", "onto", "about", "are", "was", "were",
    "will", "would", "should", "could", "can", "our", "your", "their", "its", "all", "any", "each", "some",
    "please", "task", "then", "than", "them", "they", "you", "has", "have", "had", "not", "but", "also",
    "what", "when", "where", "which", "who", "how", "out", "over", "only", "just", "more", "most",
})


@dataclass(frozen=True)
class Estimate:
    cost_usd_p50: float | None = None
    cost_usd_p90: float | None = None
    minutes_p50: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        return {"cost_usd_p50": self.cost_usd_p50, "cost_usd_p90": self.cost_usd_p90, "minutes_p50": self.minutes_p50}


def keywords(text: str) -> set[str]:
    return {w for w in words(text) if len(w) >= 3 and w not in STOP_WORDS}


def percentile(values: list[float], p: float) -> float | None:
    """The nearest-rank ``p`` percentile (0 < p <= 1) of ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


async def estimate(db: Database, *, agent_type: str, model: str, title: str, prompt: str) -> Estimate:
    """The estimate of a suggestion by the module's rule."""
    wanted = keywords(f"{title}\n{prompt[:DESCRIPTION_PREFIX]}")
    if not wanted:
        return Estimate()
    need = min(MIN_SHARED_WORDS, len(wanted))
    stmt = (
        select(Task.title, func.substr(Task.description, 1, DESCRIPTION_PREFIX), Task.usage, Task.created_at,
               Task.completed_at)
        .where(Task.agent_type == agent_type, Task.model == model, Task.status == TaskStatus.COMPLETED.value,
               Task.completed_at.is_not(None))
        .order_by(Task.completed_at.desc())
        .limit(HISTORY_LIMIT)
    )
    async with db.session() as s:
        rows = (await s.execute(stmt)).all()
    costs: list[float] = []
    minutes: list[float] = []
    for row_title, row_start, usage, created_at, completed_at in rows:
        if len(wanted & keywords(f"{row_title}\n{row_start or ''}")) < need:
            continue
        minutes.append(max(0.0, (as_utc(completed_at) - as_utc(created_at)).total_seconds() / 60))
        cost = (usage or {}).get("cost_usd")
        if isinstance(cost, (int, float)) and not isinstance(cost, bool):
            costs.append(float(cost))
    p50, p90, m50 = percentile(costs, 0.5), percentile(costs, 0.9), percentile(minutes, 0.5)
    return Estimate(
        cost_usd_p50=round(p50, 6) if p50 is not None else None,
        cost_usd_p90=round(p90, 6) if p90 is not None else None,
        minutes_p50=round(m50, 3) if m50 is not None else None,
    )
