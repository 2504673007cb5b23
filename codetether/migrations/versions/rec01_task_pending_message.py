"""tasks: pending_message (the message that starts a follow-up run), joining the branches

Revision ID: rec01
Revises: conv01, oauth_0002, wh01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "rec01"
down_revision = ("conv01", "oauth_0002", "wh01")
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pending_message", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("pending_message")
