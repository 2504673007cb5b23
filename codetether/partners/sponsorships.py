"""A partner's sponsorships and its usage (``/v1/partner/sponsorships``, ``/v1/partner/usage``,
``codetether/api/rest/routes/sponsorships.py``).

A sponsorship pays the model spend of the partner's end users up to ``limit_usd`` per calendar
month (``period: "month"``) or in total (``"none"``), for one end user, one workspace or all of
the partner's end users (``scope``). How a turn is charged to one is in
:mod:`codetether.budgets.sponsored`. Every lookup is scoped to the partner: another partner's
sponsorship, end user or workspace does not exist for it (404).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from codetether.budgets.service import UsageCharge, usage_rows
from codetether.budgets.sponsored import PERIODS, SCOPES, current_view
from codetether.core.db import Database
from codetether.core.errors import ServiceError
from codetether.core.ids import iso, new_id, utcnow
from codetether.core.models import (
    BudgetCharge,
    Partner,
    PartnerEndUser,
    PartnerSponsorship,
    PartnerWorkspace,
)

ON_EXHAUST = ("ask", "fail")
USAGE_GROUPS = ("end_user", "workspace", "day")


def not_found(sponsorship_id: str) -> ServiceError:
    return ServiceError(404, "sponsorship_not_found", f"no sponsorship {sponsorship_id!r}")


async def _target(s, partner: Partner, scope: str, target_id: str | None) -> str:
    """The id the sponsorship covers, checked to be the partner's own."""
    if scope not in SCOPES:
        raise ServiceError(422, "validation_error", f"scope must be one of {', '.join(SCOPES)}", field="scope")
    if scope == "partner":
        if target_id is not None and target_id != partner.id:
            raise ServiceError(404, "partner_not_found", f"no partner {target_id!r}")
        return partner.id
    if target_id is None:
        raise ServiceError(422, "validation_error", f"target_id is required for scope {scope!r}", field="target_id")
    model, code = (PartnerEndUser, "end_user_not_found") if scope == "end_user" else (PartnerWorkspace, "workspace_not_found")
    found = (await s.execute(select(model.id).where(model.id == target_id, model.partner_id == partner.id))).scalar_one_or_none()
    if found is None:
        raise ServiceError(404, code, f"no {scope.replace('_', ' ')} {target_id!r}")
    return target_id


def _check(limit_usd: float | None, period: str | None, on_exhaust: str | None) -> None:
    # The REST schema checks these too; the service keeps its own rules for other callers.
    if limit_usd is not None and not 0 < limit_usd <= 1_000_000:
        raise ServiceError(422, "validation_error", "limit_usd must be more than 0 and at most 1000000", field="limit_usd")
    if period is not None and period not in PERIODS:
        raise ServiceError(422, "validation_error", f"period must be one of {', '.join(PERIODS)}", field="period")
    if on_exhaust is not None and on_exhaust not in ON_EXHAUST:
        raise ServiceError(422, "validation_error", f"on_exhaust must be one of {', '.join(ON_EXHAUST)}", field="on_exhaust")


async def create_sponsorship(db: Database, partner: Partner, *, scope: str, target_id: str | None, limit_usd: float,
                             period: str = "month", on_exhaust: str = "ask") -> dict[str, Any]:
    _check(limit_usd, period, on_exhaust)
    async with db.write_session() as s:
        target = await _target(s, partner, scope, target_id)
        now = utcnow()
        spn = PartnerSponsorship(id=new_id("spn"), partner_id=partner.id, scope=scope, target_id=target,
                                 limit_usd=limit_usd, period=period, on_exhaust=on_exhaust,
                                 created_at=now, updated_at=now)
        s.add(spn)
        try:
            await s.commit()
        except IntegrityError:
            await s.rollback()
            existing = (await s.execute(select(PartnerSponsorship.id).where(
                PartnerSponsorship.partner_id == partner.id, PartnerSponsorship.scope == scope,
                PartnerSponsorship.target_id == target))).scalar_one_or_none()
            raise ServiceError(409, "sponsorship_exists",
                               f"{target} already has a {scope} sponsorship ({existing}); change it with PATCH") from None
        return await current_view(s, spn, now)


async def _own(s, partner_id: str, sponsorship_id: str) -> PartnerSponsorship:
    spn = (await s.execute(select(PartnerSponsorship).where(
        PartnerSponsorship.id == sponsorship_id, PartnerSponsorship.partner_id == partner_id))).scalar_one_or_none()
    if spn is None:
        raise not_found(sponsorship_id)
    return spn


async def get_sponsorship(db: Database, partner_id: str, sponsorship_id: str) -> dict[str, Any]:
    async with db.session() as s:
        return await current_view(s, await _own(s, partner_id, sponsorship_id), utcnow())


async def list_sponsorships(db: Database, partner_id: str, *, scope: str | None = None,
                            target_id: str | None = None) -> list[dict[str, Any]]:
    """The partner's sponsorships, narrowest scope first, then oldest first."""
    q = select(PartnerSponsorship).where(PartnerSponsorship.partner_id == partner_id)
    if scope is not None:
        q = q.where(PartnerSponsorship.scope == scope)
    if target_id is not None:
        q = q.where(PartnerSponsorship.target_id == target_id)
    now = utcnow()
    async with db.session() as s:
        rows = (await s.execute(q.order_by(PartnerSponsorship.created_at, PartnerSponsorship.id))).scalars().all()
        rows = sorted(rows, key=lambda spn: SCOPES.index(spn.scope))
        return [await current_view(s, spn, now) for spn in rows]


async def update_sponsorship(db: Database, partner_id: str, sponsorship_id: str, *, limit_usd: float | None = None,
                             period: str | None = None, on_exhaust: str | None = None) -> dict[str, Any]:
    """Changes the fields given. A raised limit lets the tasks parked on it continue once their
    budget question is approved (or their next turn starts)."""
    _check(limit_usd, period, on_exhaust)
    async with db.write_session() as s:
        spn = await _own(s, partner_id, sponsorship_id)
        if limit_usd is not None:
            spn.limit_usd = limit_usd
        if period is not None:
            spn.period = period
        if on_exhaust is not None:
            spn.on_exhaust = on_exhaust
        spn.updated_at = utcnow()
        await s.commit()
        return await current_view(s, spn, spn.updated_at)


async def delete_sponsorship(db: Database, partner_id: str, sponsorship_id: str) -> None:
    """Removes it: the end users it covered are charged to the next sponsorship that covers them,
    or to their own budget when none does. Its past charges stay in the partner's usage."""
    async with db.write_session() as s:
        await s.delete(await _own(s, partner_id, sponsorship_id))
        await s.commit()


async def usage(db: Database, partner_id: str, group_by: str, start: datetime | None,
                end: datetime | None) -> list[dict[str, Any]]:
    """Settled model spend of the partner's end users in [start, end) (default: the last 30 days),
    grouped by the end user or workspace a charge was made for, or by day. Sponsored or not."""
    if group_by not in USAGE_GROUPS:
        raise ServiceError(422, "validation_error", f"group_by must be one of {', '.join(USAGE_GROUPS)}", field="group_by")
    end = end or utcnow()
    start = start or (end - timedelta(days=30))
    q = (select(BudgetCharge.task_id, BudgetCharge.end_user_id, BudgetCharge.workspace_id, BudgetCharge.created_at,
                BudgetCharge.cost_usd, BudgetCharge.input_tokens, BudgetCharge.output_tokens)
         .where(BudgetCharge.partner_id == partner_id, BudgetCharge.created_at >= start, BudgetCharge.created_at < end,
                BudgetCharge.cost_usd.is_not(None)))
    async with db.session() as s:
        charges = [UsageCharge([eu if group_by == "end_user" else ws if group_by == "workspace" else iso(created)[:10]],
                               task_id, tin, tout, cost)
                   for task_id, eu, ws, created, cost, tin, tout in (await s.execute(q)).all()]
    return usage_rows(charges)
