"""joins the protocols branch (protocols02) and the consent-by-request branch (sec01)

Revision ID: protocols03
Revises: protocols02, sec01
"""

from __future__ import annotations

revision = "protocols03"
down_revision = ("protocols02", "sec01")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
