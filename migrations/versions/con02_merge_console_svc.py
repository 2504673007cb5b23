"""joins the console tables (con01) and callback_url / header_token (svc01)

Revision ID: con02
Revises: con01, svc01
"""

from __future__ import annotations

revision = "con02"
down_revision = ("con01", "svc01")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
