"""joins the console branch (con03) and svc02

Revision ID: con04
Revises: con03, svc02
"""

from __future__ import annotations

revision = "con04"
down_revision = ("con03", "svc02")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
