"""task tags

Adds ``tasks.tags``, a JSON list of the caller's labels (CONTRACT §11). Rows made before it
hold null, read as no tags.

Revision ID: res01
Revises: sec04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "res01"
down_revision = "sec04"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("tags", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("tags")
