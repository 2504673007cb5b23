"""tasks: callback_url (terminal event only, once), webhook_events; subscriptions: header_token

Revision ID: svc01
Revises: rec01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "svc01"
down_revision = "rec01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("callback_url", sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column("callback_event_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("webhook_events", sa.JSON(), nullable=True))
    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("header_token_name", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("header_token_value", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.drop_column("header_token_value")
        batch_op.drop_column("header_token_name")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("webhook_events")
        batch_op.drop_column("callback_event_id")
        batch_op.drop_column("callback_url")
