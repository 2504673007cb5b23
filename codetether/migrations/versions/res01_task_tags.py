"""task tags and structured output

Adds ``tasks.tags``, a JSON list of the caller's labels, and ``tasks.output_schema`` /
``tasks.result_json`` (CONTRACT §11). Rows made before hold null: no tags, no schema.

Revision ID: res01
Revises: a2a01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "res01"
down_revision = "a2a01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("tags", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("output_schema", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("result_json", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("result_json")
        batch.drop_column("output_schema")
        batch.drop_column("tags")
