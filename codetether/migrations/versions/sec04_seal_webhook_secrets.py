"""webhook signing secrets sealed at rest

Widens ``webhook_subscriptions.secret`` and ``tasks.webhook_secret`` for a sealed value and, when
``CODETETHER_CODEBASE_KEY`` is configured, seals the secrets already stored (a subscription's
current one and those in ``previous_secrets``, a task's own). Without a key the rows stay as they are: they are read either way
(``codetether/core/secretbox.py``), and a secret written once a key is set (a new subscription,
a rotation) is sealed.

Revision ID: sec04
Revises: sec03
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from codetether.core.config import Settings
from codetether.core.secretbox import open_text, seal_text

revision = "sec04"
down_revision = "sec03"
branch_labels = None
depends_on = None

_subs = sa.table(
    "webhook_subscriptions",
    sa.column("id", sa.String),
    sa.column("secret", sa.String),
    sa.column("previous_secrets", sa.JSON),
)

_tasks = sa.table("tasks", sa.column("id", sa.String), sa.column("webhook_secret", sa.String))


def _rewrite(convert) -> None:
    settings = Settings()
    if not settings.codebase_key:
        return
    conn = op.get_bind()
    for row in conn.execute(sa.select(_subs.c.id, _subs.c.secret, _subs.c.previous_secrets)).all():
        previous = row.previous_secrets
        if isinstance(previous, str):  # some drivers hand JSON back as text
            previous = json.loads(previous)
        previous = [
            {**p, "secret": convert(settings, p["secret"])} if isinstance(p, dict) and p.get("secret") else p
            for p in previous or []
        ]
        conn.execute(
            _subs.update().where(_subs.c.id == row.id)
            .values(secret=convert(settings, row.secret), previous_secrets=previous)
        )
    rows = conn.execute(sa.select(_tasks.c.id, _tasks.c.webhook_secret).where(_tasks.c.webhook_secret.is_not(None)))
    for task_id, secret in rows.all():
        conn.execute(_tasks.update().where(_tasks.c.id == task_id).values(webhook_secret=convert(settings, secret)))


def upgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.alter_column("secret", existing_type=sa.String(length=300), type_=sa.String(length=1000),
                              existing_nullable=False)
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.alter_column("webhook_secret", existing_type=sa.String(length=300), type_=sa.String(length=1000),
                              existing_nullable=True)
    _rewrite(seal_text)


def downgrade() -> None:
    # Back to plain values first: a sealed one does not fit the narrower column.
    _rewrite(open_text)
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.alter_column("webhook_secret", existing_type=sa.String(length=1000), type_=sa.String(length=300),
                              existing_nullable=True)
    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.alter_column("secret", existing_type=sa.String(length=1000), type_=sa.String(length=300),
                              existing_nullable=False)
