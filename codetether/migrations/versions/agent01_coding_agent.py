"""the coding agent: codebase ref/push/credentials, task results, artifacts, transcript

Revision ID: agent01
Revises: rec01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "agent01"
down_revision = "rec01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("codebases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ref", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("push", sa.String(length=20), nullable=False, server_default="none"))
        batch_op.add_column(sa.Column("credentials_sealed", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_turns", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("changes", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("git", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("usage", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("artifacts", sa.JSON(), nullable=True))
    op.create_table(
        "task_artifacts",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("task_id", sa.String(length=40), sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_task_artifacts_task_id", "task_artifacts", ["task_id"])
    op.create_table(
        "agent_messages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.String(length=40), sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("message", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("run_id", "seq", name="uq_agent_messages_run_seq"),
    )
    op.create_index("ix_agent_messages_task_id", "agent_messages", ["task_id"])


def downgrade() -> None:
    op.drop_index("ix_agent_messages_task_id", table_name="agent_messages")
    op.drop_table("agent_messages")
    op.drop_index("ix_task_artifacts_task_id", table_name="task_artifacts")
    op.drop_table("task_artifacts")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        for name in ("artifacts", "usage", "git", "changes", "max_turns"):
            batch_op.drop_column(name)
    with op.batch_alter_table("codebases", schema=None) as batch_op:
        for name in ("updated_at", "credentials_sealed", "push", "ref"):
            batch_op.drop_column(name)
