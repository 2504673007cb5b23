"""oauth authorization requests: the consent page's request, stored server-side and approved by id

Revision ID: sec01
Revises: rec01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "sec01"
down_revision = "rec01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oauth_authorization_requests",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("session_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=60), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["oauth_clients.client_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_oauth_authorization_requests_session_hash", "oauth_authorization_requests", ["session_hash"]
    )


def downgrade() -> None:
    op.drop_index("ix_oauth_authorization_requests_session_hash", table_name="oauth_authorization_requests")
    op.drop_table("oauth_authorization_requests")
