"""email reply uses and inbound webhook signatures: each reply address and each provider signature counts once

Revision ID: sec03
Revises: sec02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "sec03"
down_revision = "sec02"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "email_reply_uses",
        sa.Column("task_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("task_id", "seq"),
    )
    op.create_table(
        "inbound_webhook_signatures",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )
    op.create_index(op.f("ix_inbound_webhook_signatures_expires_at"), "inbound_webhook_signatures", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_inbound_webhook_signatures_expires_at"), table_name="inbound_webhook_signatures")
    op.drop_table("inbound_webhook_signatures")
    op.drop_table("email_reply_uses")
