"""oauth_tokens: successor_seed (a refresh repeated inside the grace window gets the same pair);
oauth_clients: self_registered (a dynamically registered client's name is shown as unverified)

Live refresh tokens get a seed now, so the rule holds for them too. Existing owner-less public
clients are the ones dynamic registration made.

Revision ID: sec02
Revises: agent02
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "sec02"
down_revision = "agent02"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("oauth_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("successor_seed", sa.String(length=64), nullable=True))
    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("self_registered", sa.Boolean(), nullable=False, server_default=sa.false()))
    clients = sa.table("oauth_clients", sa.column("owner_id", sa.String), sa.column("is_public", sa.Boolean),
                       sa.column("self_registered", sa.Boolean))
    op.execute(clients.update().where(clients.c.owner_id.is_(None), clients.c.is_public.is_(True))
               .values(self_registered=True))
    tokens = sa.table("oauth_tokens", sa.column("id", sa.String), sa.column("refresh_token_hash", sa.String),
                      sa.column("revoked_at", sa.DateTime), sa.column("successor_seed", sa.String))
    conn = op.get_bind()
    ids = conn.execute(sa.select(tokens.c.id).where(tokens.c.refresh_token_hash.is_not(None),
                                                    tokens.c.revoked_at.is_(None))).scalars().all()
    for token_id in ids:
        conn.execute(tokens.update().where(tokens.c.id == token_id).values(successor_seed=secrets.token_urlsafe(32)))


def downgrade() -> None:
    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.drop_column("self_registered")
    with op.batch_alter_table("oauth_tokens", schema=None) as batch_op:
        batch_op.drop_column("successor_seed")
