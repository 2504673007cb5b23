"""Money: each user's monthly budget and the ledger of model-turn charges (CONTRACT §13).

A charge is reserved before a model turn (``reserved_usd``, the turn's priced estimate) and
settled after it (``cost_usd``); spend is the settled charges of the period plus the reservations
still open, so concurrent turns of one user cannot together overshoot a limit by more than one
turn's reservation each.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from codetether.core.ids import utcnow
from codetether.core.models.base import Base


class UserBudget(Base):
    __tablename__ = "user_budgets"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    # None: no limit (the tier default from settings applies only while no row exists).
    limit_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    on_exhaust: Mapped[str] = mapped_column(String(8), default="ask")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class BudgetCharge(Base):
    __tablename__ = "budget_charges"
    __table_args__ = (
        Index("ix_budget_charges_user_created", "user_id", "created_at"),
        Index("ix_budget_charges_task", "task_id"),
        Index("ix_budget_charges_sponsorship_created", "sponsorship_id", "created_at"),
        Index("ix_budget_charges_partner_created", "partner_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    task_id: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(100))
    reserved_usd: Mapped[float] = mapped_column(Float)
    # Set when the turn is over: what it cost (0 for a turn that failed before any tokens).
    cost_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # A partner's end user's charge: who it was for when it was made (usage per end user and
    # workspace outlives a deleted end user or a move), and the sponsorship that pays it (null:
    # the user's own budget).
    partner_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    end_user_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    workspace_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    sponsorship_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
