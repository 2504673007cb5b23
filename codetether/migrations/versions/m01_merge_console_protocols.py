"""joins the console (con02) and A2A push-config (protocols01) heads; no schema change

Revision ID: m01
Revises: con02, protocols01
"""

from __future__ import annotations

revision = "m01"
down_revision = ("con02", "protocols01")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
