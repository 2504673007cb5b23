"""partners: partners, their workspaces and end users, the subject-token replay cache

CONTRACT §14. New tables only; nothing existing changes.

Revision ID: ptn01
Revises: files01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "ptn01"
down_revision = "files01"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "partners",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("client_id", sa.String(length=60), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("origins", sa.JSON(), nullable=False),
        sa.Column("jwks_uri", sa.String(length=2000), nullable=True),
        sa.Column("shared_secret", sa.String(length=500), nullable=True),
        sa.Column("is_test", sa.Boolean(), nullable=False),
        _ts("created_at"),
        sa.ForeignKeyConstraint(["client_id"], ["oauth_clients.client_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id"),
    )
    op.create_table(
        "partner_workspaces",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        _ts("created_at"),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("partner_id", "external_id", name="uq_partner_workspaces_external"),
    )
    op.create_index("ix_partner_workspaces_partner_id", "partner_workspaces", ["partner_id"])
    op.create_table(
        "partner_end_users",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("first_name", sa.String(length=200), nullable=True),
        sa.Column("last_name", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("claimed_at", nullable=True),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["workspace_id"], ["partner_workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id"),
        sa.UniqueConstraint("partner_id", "external_id", name="uq_partner_end_users_external"),
    )
    op.create_index("ix_partner_end_users_partner_id", "partner_end_users", ["partner_id"])
    op.create_index("ix_partner_end_users_workspace_id", "partner_end_users", ["workspace_id"])
    op.create_table(
        "partner_subject_tokens",
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("jti", sa.String(length=200), nullable=False),
        _ts("expires_at"),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("partner_id", "jti"),
    )
    op.create_index("ix_partner_subject_tokens_expires_at", "partner_subject_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_partner_subject_tokens_expires_at", table_name="partner_subject_tokens")
    op.drop_table("partner_subject_tokens")
    op.drop_index("ix_partner_end_users_workspace_id", table_name="partner_end_users")
    op.drop_index("ix_partner_end_users_partner_id", table_name="partner_end_users")
    op.drop_table("partner_end_users")
    op.drop_index("ix_partner_workspaces_partner_id", table_name="partner_workspaces")
    op.drop_table("partner_workspaces")
    op.drop_table("partners")
