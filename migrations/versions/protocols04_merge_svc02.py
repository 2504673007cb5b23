"""joins the protocols branch (protocols03) and svc02

Revision ID: protocols04
Revises: protocols03, svc02
"""

from __future__ import annotations

revision = "protocols04"
down_revision = ("protocols03", "svc02")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
