"""joins the sec01 and svc01 branches (no schema change; reply links and inbound email store nothing)

Revision ID: reply01
Revises: sec01, svc01
"""

from __future__ import annotations

revision = "reply01"
down_revision = ("sec01", "svc01")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
