"""join the coding agent's migration with the others' branches

Revision ID: agent02
Revises: agent01, m01
"""

from __future__ import annotations

revision = "agent02"
down_revision = ("agent01", "m01")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
