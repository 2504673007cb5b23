"""embed sessions

Adds ``partner_embed_sessions`` (CONTRACT §14 Embed): the short-lived client secrets of the
embedded task element, stored hashed, each for one end user of one partner. A new table only.

Revision ID: emb01
Revises: gss01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "emb01"
down_revision = "gss01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partner_embed_sessions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("end_user_id", sa.String(length=40), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("max_cost_usd", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["end_user_id"], ["partner_end_users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("secret_hash"),
    )
    op.create_index("ix_partner_embed_sessions_partner_id", "partner_embed_sessions", ["partner_id"])
    op.create_index("ix_partner_embed_sessions_end_user_id", "partner_embed_sessions", ["end_user_id"])
    op.create_index("ix_partner_embed_sessions_expires_at", "partner_embed_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_partner_embed_sessions_expires_at", table_name="partner_embed_sessions")
    op.drop_index("ix_partner_embed_sessions_end_user_id", table_name="partner_embed_sessions")
    op.drop_index("ix_partner_embed_sessions_partner_id", table_name="partner_embed_sessions")
    op.drop_table("partner_embed_sessions")
