"""A user's budget and usage as the API shows them: ``GET``/``PUT /v1/automation/budget``,
``GET /v1/automation/usage`` (``codetether/api/rest/routes/budget.py``), and the check that
refuses a new task when the month's budget is spent (``tasks/service.py``)."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
import io
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from codetether.budgets import sponsored
from codetether.budgets.ledger import ON_EXHAUST, month_bounds, user_limit, user_spend
from codetether.core.config import Settings
from codetether.core.db import Database
from codetether.core.errors import ServiceError
from codetether.core.ids import iso, utcnow
from codetether.core.models import BudgetCharge, Task, UserBudget

GROUPS = ("day", "model", "tag")


async def budget_view(db: Database, settings: Settings, user_id: str) -> dict[str, Any]:
    start, end = month_bounds(utcnow())
    async with db.session() as s:
        limit, on_exhaust = await user_limit(s, settings, user_id)
        settled, reserved = await user_spend(s, user_id, start, end)
    remaining = None if limit is None else round(max(limit - settled - reserved, 0.0), 10)
    return {"period": "month", "limit_usd": limit, "spent_usd": round(settled, 10), "reserved_usd": round(reserved, 10),
            "remaining_usd": remaining, "period_start": iso(start), "period_end": iso(end), "on_exhaust": on_exhaust}


async def set_budget(db: Database, settings: Settings, user_id: str, limit_usd: float | None, on_exhaust: str) -> dict[str, Any]:
    if on_exhaust not in ON_EXHAUST:
        raise ServiceError(422, "validation_error", f"on_exhaust must be one of {', '.join(ON_EXHAUST)}", field="on_exhaust")
    async with db.write_session() as s:
        row = await s.get(UserBudget, user_id)
        if row is None:
            s.add(UserBudget(user_id=user_id, limit_usd=limit_usd, on_exhaust=on_exhaust, updated_at=utcnow()))
        else:
            row.limit_usd, row.on_exhaust, row.updated_at = limit_usd, on_exhaust, utcnow()
        await s.commit()
    return await budget_view(db, settings, user_id)


async def check_can_spend(db: Database, settings: Settings, user_id: str) -> None:
    """402 ``budget_exhausted`` when the user's month is spent: a new task could not take one turn.
    A partner's sponsored end user is checked against its sponsorships instead."""
    room = await sponsored.has_room(db, user_id, utcnow())
    if room is False:
        raise ServiceError(402, "budget_exhausted",
                           "the sponsored budget for this user is spent; the partner can raise it with "
                           "PATCH /v1/partner/sponsorships/{id}")
    if room is True:
        return
    view = await budget_view(db, settings, user_id)
    if view["remaining_usd"] is not None and view["remaining_usd"] <= 0:
        raise ServiceError(402, "budget_exhausted",
                           f"this month's budget of ${view['limit_usd']:.2f} is spent; raise it with PUT /v1/automation/budget "
                           f"or wait until {view['period_end']}")


async def raise_limits(db: Database, settings: Settings, task_id: str, user_id: str, add_usd: float, bound: str) -> None:
    """An approved budget question: the task's cap (and, when the month's budget was the bound,
    the user's limit) grows by ``add_usd``. When a sponsorship was the bound only the task's own
    cap grows (if it has one): a sponsorship is the partner's money and changes only through
    ``PATCH /v1/partner/sponsorships/{id}``, so the turn runs again against it as it is now."""
    async with db.write_session() as s:
        task = await s.get(Task, task_id)
        if task is not None and task.max_cost_usd is not None and bound in ("task", "sponsorship"):
            task.max_cost_usd = round(task.max_cost_usd + add_usd, 10)
        if bound == "user":
            limit, on_exhaust = await user_limit(s, settings, user_id)
            row = await s.get(UserBudget, user_id)
            new_limit = round((limit or 0.0) + add_usd, 10)
            if row is None:
                s.add(UserBudget(user_id=user_id, limit_usd=new_limit, on_exhaust=on_exhaust, updated_at=utcnow()))
            else:
                row.limit_usd, row.updated_at = new_limit, utcnow()
        await s.commit()


async def usage(db: Database, user_id: str, group_by: str, start: datetime | None, end: datetime | None) -> list[dict[str, Any]]:
    """The caller's settled model spend grouped by day, model or tag, over [start, end)."""
    if group_by not in GROUPS:
        raise ServiceError(422, "validation_error", f"group_by must be one of {', '.join(GROUPS)}", field="group_by")
    end = end or utcnow()
    start = start or (end - timedelta(days=30))
    q = (select(BudgetCharge.task_id, BudgetCharge.model, BudgetCharge.created_at, BudgetCharge.cost_usd,
                BudgetCharge.input_tokens, BudgetCharge.output_tokens, Task.tags)
         .join(Task, Task.id == BudgetCharge.task_id, isouter=True)
         .where(BudgetCharge.user_id == user_id, BudgetCharge.created_at >= start, BudgetCharge.created_at < end,
                BudgetCharge.cost_usd.is_not(None)))
    charges = []
    async with db.session() as s:
        for task_id, model, created, cost, tin, tout, tags in (await s.execute(q)).all():
            if group_by == "day":
                keys = [iso(created)[:10]]
            elif group_by == "model":
                keys = [model]
            else:
                keys = list(tags or []) or ["(untagged)"]
            charges.append(UsageCharge(keys, task_id, tin, tout, cost))
    return usage_rows(charges)


@dataclass
class UsageCharge:
    """One settled charge and the usage rows it counts in (a tagged task: one per tag)."""

    keys: list[str]
    task_id: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float


def usage_rows(charges: Iterable[UsageCharge]) -> list[dict[str, Any]]:
    """``{key, tasks, input_tokens, output_tokens, cost_usd}`` per key, sorted by key: the rows of
    ``GET /v1/automation/usage`` and ``GET /v1/partner/usage``."""
    rows: dict[str, dict[str, Any]] = defaultdict(lambda: {"tasks": set(), "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0})
    for c in charges:
        for key in c.keys:
            row = rows[key]
            row["tasks"].add(c.task_id)
            row["input_tokens"] += c.input_tokens
            row["output_tokens"] += c.output_tokens
            row["cost_usd"] += c.cost_usd
    return [{"key": key, "tasks": len(r["tasks"]), "input_tokens": r["input_tokens"], "output_tokens": r["output_tokens"],
             "cost_usd": round(r["cost_usd"], 10)} for key, r in sorted(rows.items())]


def usage_csv(data: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["key", "tasks", "input_tokens", "output_tokens", "cost_usd"], lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(data)
    return out.getvalue()
