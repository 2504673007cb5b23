"""partner suggestions: the guesser's suggested tasks behind single-use prefilled URLs

CONTRACT §14 (``POST /v1/partner/guess``). A new table only; nothing existing changes.

Revision ID: gss01
Revises: cho01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "gss01"
down_revision = "cho01"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "partner_suggestions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("end_user_id", sa.String(length=40), nullable=True),
        sa.Column("create_payload", sa.JSON(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
        _ts("used_at", nullable=True),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_partner_suggestions_partner_id", "partner_suggestions", ["partner_id"])
    op.create_index("ix_partner_suggestions_expires_at", "partner_suggestions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_partner_suggestions_expires_at", table_name="partner_suggestions")
    op.drop_index("ix_partner_suggestions_partner_id", table_name="partner_suggestions")
    op.drop_table("partner_suggestions")
