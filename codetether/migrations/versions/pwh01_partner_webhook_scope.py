"""partner clients may manage their own webhooks

CONTRACT §14: a partner subscribes to ``end_user.*`` and ``sponsorship.*`` events with its own
client credentials, so partner clients registered before this revision get ``webhooks:manage``
(acting for an end user never carries it).

Revision ID: pwh01
Revises: clm01
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "pwh01"
down_revision = "clm01"
branch_labels = None
depends_on = None

SCOPE = "webhooks:manage"


def _rewrite(add: bool) -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT c.client_id, c.scopes FROM oauth_clients c JOIN partners p ON p.client_id = c.client_id")).all()
    for client_id, scopes in rows:
        scopes = json.loads(scopes) if isinstance(scopes, str) else list(scopes or [])
        new = scopes + [SCOPE] if add and SCOPE not in scopes else [s for s in scopes if not (not add and s == SCOPE)]
        if new != scopes:
            bind.execute(sa.text("UPDATE oauth_clients SET scopes = :s WHERE client_id = :id"),
                         {"s": json.dumps(new), "id": client_id})


def upgrade() -> None:
    _rewrite(add=True)


def downgrade() -> None:
    _rewrite(add=False)
