"""partner claim links

CONTRACT §14: ``partner_account_links`` holds the single-use claim links (the token's hash, the
partner's return and refresh URLs, expiry, use). ``partner_end_users.user_id`` is no longer
unique: an end user claimed by signing in to an existing account points at that account, and
one account may claim end users of several partners. It keeps an index for lookups by account.

Revision ID: clm01
Revises: emb01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "clm01"
down_revision = "emb01"
branch_labels = None
depends_on = None

# SQLite reflects the unnamed unique constraint of ptn01 without a name: batch mode names it by
# this convention so it can be dropped; PostgreSQL has its own name for it, found by reflection.
_NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _user_id_unique() -> str | None:
    for uq in sa.inspect(op.get_bind()).get_unique_constraints("partner_end_users"):
        if uq.get("column_names") == ["user_id"]:
            return uq.get("name") or "uq_partner_end_users_user_id"
    return None


def upgrade() -> None:
    op.create_table(
        "partner_account_links",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("end_user_id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("return_url", sa.String(length=2000), nullable=False),
        sa.Column("refresh_url", sa.String(length=2000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["end_user_id"], ["partner_end_users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_partner_account_links_end_user_id", "partner_account_links", ["end_user_id"])
    name = _user_id_unique()
    with op.batch_alter_table("partner_end_users", naming_convention=_NAMING) as batch:
        if name is not None:
            batch.drop_constraint(name, type_="unique")
        batch.create_index("ix_partner_end_users_user_id", ["user_id"])


def downgrade() -> None:
    with op.batch_alter_table("partner_end_users", naming_convention=_NAMING) as batch:
        batch.drop_index("ix_partner_end_users_user_id")
        batch.create_unique_constraint("uq_partner_end_users_user_id", ["user_id"])
    op.drop_index("ix_partner_account_links_end_user_id", table_name="partner_account_links")
    op.drop_table("partner_account_links")
