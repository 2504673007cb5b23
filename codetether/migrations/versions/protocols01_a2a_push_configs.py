"""a2a_push_configs (A2A push-notification configs) and webhook_deliveries.push_config_id

Revision ID: protocols01
Revises: rec01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "protocols01"
down_revision = "rec01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "a2a_push_configs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("task_id", sa.String(40), sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.String(40), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("token", sa.String(500), nullable=True),
        sa.Column("auth_scheme", sa.String(40), nullable=True),
        sa.Column("auth_credentials", sa.String(2000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_a2a_push_configs_task_id", "a2a_push_configs", ["task_id"])
    op.create_index("ix_a2a_push_configs_user_id", "a2a_push_configs", ["user_id"])
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("push_config_id", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_column("push_config_id")
    op.drop_index("ix_a2a_push_configs_user_id", table_name="a2a_push_configs")
    op.drop_index("ix_a2a_push_configs_task_id", table_name="a2a_push_configs")
    op.drop_table("a2a_push_configs")
