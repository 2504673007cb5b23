"""joins the A2A push-config branch (protocols01) and the callback/header-token branch (svc01)

Revision ID: protocols02
Revises: protocols01, svc01
"""

from __future__ import annotations

revision = "protocols02"
down_revision = ("protocols01", "svc01")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
