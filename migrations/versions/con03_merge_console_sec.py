"""joins the console branch (con02) and the stored OAuth authorization requests (sec01)

Revision ID: con03
Revises: con02, sec01
"""

from __future__ import annotations

revision = "con03"
down_revision = ("con02", "sec01")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
