"""The charge ledger: a model turn reserves its priced estimate before it calls the provider and
settles what it cost afterwards (``codetether/agent/activities.py``, ``model_turn``).

A reservation is refused (:class:`BudgetRefused`) when it would take the task past its
``max_cost_usd`` or the user past the month's limit: spend counts settled charges and the
reservations still open, so a limit is overshot by at most the turns already under way. A
partner's sponsored end user is charged to a sponsorship instead of its own monthly budget
(:mod:`codetether.budgets.sponsored`), under the same rule and in the same transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select, update

from codetether.budgets import sponsored
from codetether.budgets.periods import month_bounds
from codetether.core.config import Settings
from codetether.core.db import Database
from codetether.core.ids import new_id, utcnow
from codetether.core.models import BudgetCharge, Task, User, UserBudget

ON_EXHAUST = ("ask", "fail")


@dataclass
class BudgetRefused(Exception):
    # "task" (its max_cost_usd), "user" (the month's limit) or "sponsorship" (every sponsorship
    # covering a partner's end user; limit and spend are the narrowest one's).
    bound: str
    limit_usd: float
    spent_usd: float
    needed_usd: float
    on_exhaust: str
    sponsorship_ids: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        what = {"task": "the task's max_cost_usd", "sponsorship": "the sponsored budget"}.get(self.bound, "the monthly budget")
        return (f"the next model turn (about ${self.needed_usd:.4f}) would exceed {what} "
                f"(${self.spent_usd:.4f} of ${self.limit_usd:.4f} used)")


def tier_limit(settings: Settings, tier: str) -> float | None:
    return getattr(settings, f"budget_limit_usd_{tier}", None)


async def user_limit(s, settings: Settings, user_id: str) -> tuple[float | None, str]:
    """The user's monthly limit and ``on_exhaust``: their own setting, else their tier's default."""
    row = await s.get(UserBudget, user_id)
    if row is not None:
        return row.limit_usd, row.on_exhaust
    tier = (await s.execute(select(User.tier).where(User.id == user_id))).scalar_one_or_none() or "free"
    return tier_limit(settings, tier), "ask"


def _spend(s, *where):
    # A settled charge counts what it cost, an open one what it reserved.
    amount = func.coalesce(BudgetCharge.cost_usd, BudgetCharge.reserved_usd)
    return s.execute(select(func.coalesce(func.sum(amount), 0.0)).where(*where))


async def user_spend(s, user_id: str, start: datetime, end: datetime) -> tuple[float, float]:
    """(settled, still reserved) of the user's charges made in [start, end). Charges a partner's
    sponsorship paid are the partner's, not the user's."""
    mine = (BudgetCharge.user_id == user_id, BudgetCharge.created_at >= start, BudgetCharge.created_at < end,
            BudgetCharge.sponsorship_id.is_(None))
    settled = (await s.execute(select(func.coalesce(func.sum(BudgetCharge.cost_usd), 0.0)).where(
        *mine, BudgetCharge.cost_usd.is_not(None)))).scalar_one()
    reserved = (await s.execute(select(func.coalesce(func.sum(BudgetCharge.reserved_usd), 0.0)).where(
        *mine, BudgetCharge.cost_usd.is_(None)))).scalar_one()
    return float(settled), float(reserved)


def charge_id_for(turn_key: str) -> str:
    """The charge of one model turn, the same for every attempt of it (a retry after a worker
    died reuses the reservation instead of opening a second one)."""
    return "chg_" + hashlib.sha256(turn_key.encode()).hexdigest()[:32]


async def reserve(db: Database, settings: Settings, task_id: str, user_id: str, model: str, amount: float,
                  *, turn_key: str | None = None) -> str:
    """Opens a charge of ``amount`` for the task's next turn; :class:`BudgetRefused` if a cap forbids it.
    With ``turn_key``, an earlier attempt's charge of the same turn is reused as it is."""
    now = utcnow()
    charge_id = charge_id_for(turn_key) if turn_key else new_id("chg")
    async with db.write_session() as s:
        earlier = await s.get(BudgetCharge, charge_id) if turn_key else None
        if earlier is not None:
            # A retry of the turn: the one charge is open again until this attempt settles it.
            earlier.reserved_usd, earlier.cost_usd, earlier.settled_at = amount, None, None
            await s.commit()
            return charge_id
        # One reservation at a time per user (the row lock; SQLite serialises writers anyway).
        if not db.is_sqlite:
            await s.execute(select(User.id).where(User.id == user_id).with_for_update())
        limit, on_exhaust = await user_limit(s, settings, user_id)
        cap = (await s.execute(select(Task.max_cost_usd).where(Task.id == task_id))).scalar_one_or_none()
        if cap is not None:
            spent = float((await _spend(s, BudgetCharge.task_id == task_id)).scalar_one())
            if spent + amount > cap:
                raise BudgetRefused("task", cap, spent, amount, on_exhaust)
        payer = await sponsored.payer_of(s, user_id)
        # The sponsorship rows are locked like the user row: reservations of every end user they
        # cover queue here, so together they cannot pass a sponsorship's limit.
        spns = await sponsored.applicable(s, payer, lock=not db.is_sqlite) if payer is not None else []
        paid_by = None
        if spns:
            paid_by, used = await sponsored.choose(s, spns, amount, now)
            if paid_by is None:
                raise BudgetRefused("sponsorship", spns[0].limit_usd, used, amount, spns[0].on_exhaust,
                                    [spn.id for spn in spns])
        elif limit is not None:
            start, end = month_bounds(now)
            settled, reserved = await user_spend(s, user_id, start, end)
            if settled + reserved + amount > limit:
                raise BudgetRefused("user", limit, settled + reserved, amount, on_exhaust)
        stamp = payer.stamp(paid_by.id if paid_by is not None else None) if payer is not None else {}
        s.add(BudgetCharge(id=charge_id, user_id=user_id, task_id=task_id, model=model, reserved_usd=amount,
                           created_at=now, **stamp))
        await s.commit()
    return charge_id


async def settle(db: Database, charge_id: str, cost_usd: float, input_tokens: int = 0, output_tokens: int = 0) -> None:
    async with db.write_session() as s:
        await s.execute(update(BudgetCharge).where(BudgetCharge.id == charge_id, BudgetCharge.cost_usd.is_(None)).values(
            cost_usd=cost_usd, input_tokens=input_tokens, output_tokens=output_tokens, settled_at=utcnow()))
        await s.commit()
