"""joining the branches: OAuth authorization requests (sec01) and callback_url/header_token (svc01)

Revision ID: svc02
Revises: sec01, svc01
"""

from __future__ import annotations

revision = "svc02"
down_revision = ("sec01", "svc01")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
