"""Sponsorships (CONTRACT §14): a partner pays for its end users' model spend, up to a limit per
month (or in total), at the level of one end user, one workspace or all of its end users.

Charges of a sponsored task carry the sponsorship that paid them (``budget_charges.
sponsorship_id``), so a sponsorship's spend is a sum over the ledger like a user's budget. Written
by ``codetether/partners/sponsorships.py`` (``/v1/partner/sponsorships``); charged by
``codetether/budgets/sponsored.py``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from codetether.core.ids import utcnow
from codetether.core.models.base import Base


class PartnerSponsorship(Base):
    __tablename__ = "partner_sponsorships"
    # One sponsorship per target: "the narrowest with budget left" needs one per level.
    __table_args__ = (UniqueConstraint("partner_id", "scope", "target_id", name="uq_partner_sponsorships_target"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"), index=True)
    # "partner" | "workspace" | "end_user"; target_id is the partner's own id for scope "partner".
    scope: Mapped[str] = mapped_column(String(20))
    target_id: Mapped[str] = mapped_column(String(40))
    limit_usd: Mapped[float] = mapped_column(Float)
    # "month" (calendar month, UTC) or "none" (one limit for all time).
    period: Mapped[str] = mapped_column(String(10), default="month")
    on_exhaust: Mapped[str] = mapped_column(String(8), default="ask")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
