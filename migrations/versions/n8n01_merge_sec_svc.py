"""merge revision: joins the sec01 (OAuth authorization requests) and svc01 (callback_url,
header tokens) branches; no schema change of its own

Revision ID: n8n01
Revises: sec01, svc01
"""

from __future__ import annotations

revision = "n8n01"
down_revision = ("sec01", "svc01")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
