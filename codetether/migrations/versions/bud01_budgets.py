"""budgets: per-user monthly limits, the charge ledger, a task's cost cap

Revision ID: bud01
Revises: res01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "bud01"
down_revision = "res01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_budgets",
        sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("limit_usd", sa.Float(), nullable=True),
        sa.Column("on_exhaust", sa.String(8), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "budget_charges",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("task_id", sa.String(40), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("reserved_usd", sa.Float(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_budget_charges_user_created", "budget_charges", ["user_id", "created_at"])
    op.create_index("ix_budget_charges_task", "budget_charges", ["task_id"])
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("max_cost_usd", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("max_cost_usd")
    op.drop_index("ix_budget_charges_task", table_name="budget_charges")
    op.drop_index("ix_budget_charges_user_created", table_name="budget_charges")
    op.drop_table("budget_charges")
    op.drop_table("user_budgets")
