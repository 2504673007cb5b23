"""The codebase table: a repository a task's workspace is cloned from, with sealed credentials.

Written by ``/v1/codebases`` and ``codetether codebases create``; read by the workspace activities
(``codetether/agent/workspace/``) when a task's workspace is prepared or published.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from codetether.core.ids import utcnow
from codetether.core.models.base import Base


class Codebase(Base):
    __tablename__ = "codebases"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    repository_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    push: Mapped[str] = mapped_column(String(20), default="none")
    # Fernet token of the credentials (codetether/core/secretbox.py); never returned by the API.
    credentials_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(nullable=True)
