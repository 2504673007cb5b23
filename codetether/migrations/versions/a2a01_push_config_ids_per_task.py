"""a2a_push_configs keyed by (task_id, id); task_events.run_id indexed

An A2A push-notification config id is the client's name for it within one task: two tasks may use
the same id. The primary key becomes ``(task_id, id)``. ``task_events.run_id`` gets an index: an A2A
task that is a follow-up run is found by its run id.

Revision ID: a2a01
Revises: sec04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "a2a01"
down_revision = "sec04"
branch_labels = None
depends_on = None


def _configs(*key: str) -> sa.Table:
    """The table as it is copied: its columns and indexes, with ``key`` as the primary key."""
    table = sa.Table(
        "a2a_push_configs",
        sa.MetaData(),
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("task_id", sa.String(40), sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.String(40), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("token", sa.String(500), nullable=True),
        sa.Column("auth_scheme", sa.String(40), nullable=True),
        sa.Column("auth_credentials", sa.String(2000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(*key, name="a2a_push_configs_pkey"),
    )
    sa.Index("ix_a2a_push_configs_task_id", table.c.task_id)
    sa.Index("ix_a2a_push_configs_user_id", table.c.user_id)
    return table


def upgrade() -> None:
    # The table is copied under its new key (SQLite cannot change a primary key in place).
    with op.batch_alter_table("a2a_push_configs", recreate="always", copy_from=_configs("task_id", "id")):
        pass
    op.create_index("ix_task_events_run_id", "task_events", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_task_events_run_id", table_name="task_events")
    # Ids used by several tasks cannot all keep their id under a global key: keep the oldest.
    op.execute(
        "DELETE FROM a2a_push_configs WHERE EXISTS (SELECT 1 FROM a2a_push_configs AS other "
        "WHERE other.id = a2a_push_configs.id AND (other.created_at < a2a_push_configs.created_at "
        "OR (other.created_at = a2a_push_configs.created_at AND other.task_id < a2a_push_configs.task_id)))"
    )
    with op.batch_alter_table("a2a_push_configs", recreate="always", copy_from=_configs("id")):
        pass
