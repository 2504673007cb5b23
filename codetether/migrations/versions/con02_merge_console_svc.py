"""joins the console tables (con01) and the security/integration heads (svc02)

Revision ID: con02
Revises: con01, svc02
"""

from __future__ import annotations

revision = "con02"
down_revision = ("con01", "svc02")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
