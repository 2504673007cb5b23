"""plan approval

Adds ``tasks.require_approval`` (CONTRACT §12): ``"plan"`` makes the agent's plan wait for a
person's approval before any change. Rows made before hold null: no approval step.

Revision ID: cho01
Revises: ptn01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "cho01"
down_revision = "ptn01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("require_approval", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("require_approval")
