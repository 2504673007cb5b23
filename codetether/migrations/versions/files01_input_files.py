"""input files and task attachments

Adds the ``files`` table (uploads and fetched attachment URLs, CONTRACT §11) and
``tasks.attachments``, a JSON list of the task's input files. Rows made before hold null: no
attachments.

Revision ID: files01
Revises: bud01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "files01"
down_revision = "bud01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("user_id", sa.String(length=40), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_files_user_expires", "files", ["user_id", "expires_at"])
    op.create_index("ix_files_expires_at", "files", ["expires_at"])
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("attachments", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("attachments")
    op.drop_index("ix_files_expires_at", table_name="files")
    op.drop_index("ix_files_user_expires", table_name="files")
    op.drop_table("files")
