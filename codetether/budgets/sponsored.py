"""Sponsored spend (CONTRACT §14): which sponsorship pays a partner's end user's model turn, what a
sponsorship has spent, and which threshold events its spend has reached.

A partner sponsors at three levels: one end user, a workspace, or all of its end users. A turn of
a sponsored end user's task is charged to the narrowest applicable sponsorship that still has room
for the turn's reservation (end user, then workspace, then partner); when none has, the turn is
refused like a turn past a user's budget (``codetether/budgets/ledger.py`` ``reserve`` calls
:func:`choose` inside its transaction, with the sponsorship rows locked). An end user with no
sponsorship at all spends its own user budget, as any user does.

Sponsorships are written by ``codetether/partners/sponsorships.py`` (``/v1/partner/sponsorships``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select

from codetether.budgets.periods import month_bounds
from codetether.core.db import Database
from codetether.core.ids import as_utc, iso
from codetether.core.models import (
    BudgetCharge,
    Partner,
    PartnerEndUser,
    PartnerSponsorship,
)

# Narrowest first: the order in which sponsorships are tried.
SCOPES = ("end_user", "workspace", "partner")
PERIODS = ("month", "none")


@dataclass
class Payer:
    """Who a partner's end user's charges are made for."""

    partner_id: str
    end_user_id: str
    workspace_id: str

    def stamp(self, sponsorship_id: str | None) -> dict[str, str | None]:
        return {"partner_id": self.partner_id, "end_user_id": self.end_user_id, "workspace_id": self.workspace_id,
                "sponsorship_id": sponsorship_id}


async def payer_of(s, user_id: str) -> Payer | None:
    """The partner end user backed by this user, or None for any other user."""
    row = (await s.execute(select(PartnerEndUser.partner_id, PartnerEndUser.id, PartnerEndUser.workspace_id)
                           .where(PartnerEndUser.user_id == user_id))).first()
    return Payer(*row) if row is not None else None


async def applicable(s, payer: Payer, *, lock: bool = False) -> list[PartnerSponsorship]:
    """The sponsorships that cover this end user, narrowest first. With ``lock`` (PostgreSQL) the
    rows stay locked until the transaction ends, taken in id order so that two reservations never
    wait on each other crosswise."""
    q = (select(PartnerSponsorship)
         .where(PartnerSponsorship.partner_id == payer.partner_id,
                or_(and_(PartnerSponsorship.scope == "end_user", PartnerSponsorship.target_id == payer.end_user_id),
                    and_(PartnerSponsorship.scope == "workspace", PartnerSponsorship.target_id == payer.workspace_id),
                    and_(PartnerSponsorship.scope == "partner", PartnerSponsorship.target_id == payer.partner_id)))
         .order_by(PartnerSponsorship.id))
    if lock:
        q = q.with_for_update()
    rows = list((await s.execute(q)).scalars().all())
    return sorted(rows, key=lambda spn: SCOPES.index(spn.scope))


def period_bounds(spn: PartnerSponsorship, now: datetime) -> tuple[datetime, datetime | None]:
    """[start, end) of the period ``now`` falls in; a sponsorship without a period counts from its
    creation on, with no end."""
    if spn.period == "month":
        return month_bounds(now)
    return as_utc(spn.created_at), None


async def spend(s, spn: PartnerSponsorship, now: datetime) -> tuple[float, float]:
    """(settled, still reserved) of the sponsorship's charges in the period of ``now``."""
    start, end = period_bounds(spn, now)
    where = [BudgetCharge.sponsorship_id == spn.id]
    if spn.period == "month":
        where += [BudgetCharge.created_at >= start, BudgetCharge.created_at < end]
    settled = func.sum(BudgetCharge.cost_usd)
    reserved = func.sum(BudgetCharge.reserved_usd).filter(BudgetCharge.cost_usd.is_(None))
    row = (await s.execute(select(func.coalesce(settled, 0.0), func.coalesce(reserved, 0.0)).where(*where))).one()
    return float(row[0]), float(row[1])


async def choose(s, spns: list[PartnerSponsorship], amount: float, now: datetime) -> tuple[PartnerSponsorship | None, float]:
    """The narrowest sponsorship with room for ``amount`` (None if none has), and what the
    narrowest one has used (for the refusal's message)."""
    used_narrowest = 0.0
    for i, spn in enumerate(spns):
        settled, reserved = await spend(s, spn, now)
        if i == 0:
            used_narrowest = settled + reserved
        if settled + reserved + amount <= spn.limit_usd:
            return spn, used_narrowest
    return None, used_narrowest


def view(spn: PartnerSponsorship, settled: float, reserved: float, now: datetime) -> dict[str, Any]:
    """The sponsorship as the API and its events show it."""
    start, end = period_bounds(spn, now)
    return {
        "sponsorship_id": spn.id,
        "scope": spn.scope,
        "target_id": spn.target_id,
        "limit_usd": spn.limit_usd,
        "period": spn.period,
        "on_exhaust": spn.on_exhaust,
        "spent_usd": round(settled, 10),
        "reserved_usd": round(reserved, 10),
        "remaining_usd": round(max(spn.limit_usd - settled - reserved, 0.0), 10),
        "period_start": iso(start),
        "period_end": iso(end),
        "created_at": iso(spn.created_at),
        "updated_at": iso(spn.updated_at),
    }


async def current_view(s, spn: PartnerSponsorship, now: datetime) -> dict[str, Any]:
    settled, reserved = await spend(s, spn, now)
    return view(spn, settled, reserved, now)


async def has_room(db: Database, user_id: str, now: datetime) -> bool | None:
    """For a new task: None when no sponsorship covers the user (its own budget applies), else
    whether any covering sponsorship has anything left."""
    async with db.session() as s:
        payer = await payer_of(s, user_id)
        spns = await applicable(s, payer) if payer is not None else []
        if not spns:
            return None
        for spn in spns:
            settled, reserved = await spend(s, spn, now)
            # Rounded as the API shows it: a limit set to the spend shown leaves nothing.
            if round(spn.limit_usd - settled - reserved, 10) > 0:
                return True
    return False


async def covering_views(db: Database, user_id: str, now: datetime) -> list[tuple[dict[str, Any], str]]:
    """The sponsorships covering this user (none for a user who is no partner's end user), as
    their events show them, each with the partner's service account that hears about it."""
    async with db.session() as s:
        payer = await payer_of(s, user_id)
        if payer is None:
            return []
        spns = await applicable(s, payer)
        owner = (await s.execute(select(Partner.user_id).where(Partner.id == payer.partner_id))).scalar_one()
        return [(await current_view(s, spn, now), owner) for spn in spns]


async def views_of(db: Database, sponsorship_ids: list[str], now: datetime) -> list[tuple[dict[str, Any], str]]:
    """These sponsorships (those still existing) as their events show them, with their partner's
    service account."""
    out = []
    async with db.session() as s:
        for spn_id in sponsorship_ids:
            row = (await s.execute(select(PartnerSponsorship, Partner.user_id)
                                   .join(Partner, Partner.id == PartnerSponsorship.partner_id)
                                   .where(PartnerSponsorship.id == spn_id))).first()
            if row is not None:
                out.append((await current_view(s, row[0], now), row[1]))
    return out
