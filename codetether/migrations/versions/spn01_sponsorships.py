"""sponsorships: a partner pays its end users' model spend

CONTRACT §14. Adds ``partner_sponsorships`` and, on ``budget_charges``, the partner, end user,
workspace and sponsorship a charge was made for (null on charges of other users and on rows
made before).

Revision ID: spn01
Revises: pwh01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "spn01"
down_revision = "pwh01"
branch_labels = None
depends_on = None

CHARGE_COLUMNS = ("partner_id", "end_user_id", "workspace_id", "sponsorship_id")


def upgrade() -> None:
    op.create_table(
        "partner_sponsorships",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("target_id", sa.String(length=40), nullable=False),
        sa.Column("limit_usd", sa.Float(), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("on_exhaust", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("partner_id", "scope", "target_id", name="uq_partner_sponsorships_target"),
    )
    op.create_index("ix_partner_sponsorships_partner_id", "partner_sponsorships", ["partner_id"])
    with op.batch_alter_table("budget_charges") as batch:
        for name in CHARGE_COLUMNS:
            batch.add_column(sa.Column(name, sa.String(length=40), nullable=True))
    op.create_index("ix_budget_charges_sponsorship_created", "budget_charges", ["sponsorship_id", "created_at"])
    op.create_index("ix_budget_charges_partner_created", "budget_charges", ["partner_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_budget_charges_partner_created", table_name="budget_charges")
    op.drop_index("ix_budget_charges_sponsorship_created", table_name="budget_charges")
    with op.batch_alter_table("budget_charges") as batch:
        for name in reversed(CHARGE_COLUMNS):
            batch.drop_column(name)
    op.drop_index("ix_partner_sponsorships_partner_id", table_name="partner_sponsorships")
    op.drop_table("partner_sponsorships")
