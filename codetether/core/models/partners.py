"""Partner tables ("Powered by CodeTether", CONTRACT §14): partners, their workspaces and end
users, and the replay cache of the subject tokens they sign.

A partner is a confidential OAuth client (``oauth_clients``) with a service account (``users``,
``source="partner"``) that owns it. Each end user is backed by a real ``users`` row
(``source="partner"`` until claimed), so tasks, limits and the console work for them unchanged.
Written by ``codetether/partners/`` (``codetether partners create``, ``/v1/partner/end_users``,
the token exchange at ``/oauth/token``, the guesser's suggestions of ``/v1/partner/guess``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, PrimaryKeyConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from codetether.core.ids import utcnow
from codetether.core.models.base import Base


class Partner(Base):
    __tablename__ = "partners"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), unique=True)
    # The service account that owns the client: client_credentials without an end user acts for it.
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    origins: Mapped[list[Any]] = mapped_column(default=list)
    jwks_uri: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    # HS256 key for subject tokens, sealed at rest (codetether/core/secretbox.py seal_text).
    shared_secret: Mapped[str | None] = mapped_column(String(500), nullable=True)
    is_test: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PartnerWorkspace(Base):
    __tablename__ = "partner_workspaces"
    __table_args__ = (UniqueConstraint("partner_id", "external_id", name="uq_partner_workspaces_external"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"), index=True)
    # The partner's own id for it; null for an end user's personal workspace.
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PartnerEndUser(Base):
    __tablename__ = "partner_end_users"
    __table_args__ = (UniqueConstraint("partner_id", "external_id", name="uq_partner_end_users_external"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("partner_workspaces.id", ondelete="CASCADE"), index=True)
    # What the partner told about the person; never used to match an existing account.
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    first_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    last_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="provisioned")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class PartnerSubjectToken(Base):
    """The ``jti`` of every subject token exchanged, kept until the token expires: a replay is refused."""

    __tablename__ = "partner_subject_tokens"
    __table_args__ = (PrimaryKeyConstraint("partner_id", "jti"),)

    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    jti: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(index=True)


class PartnerSuggestion(Base):
    """A task the guesser suggested (``POST /v1/partner/guess``): its create body, behind a
    single-use token of a prefilled URL (only the token's hash is kept)."""

    __tablename__ = "partner_suggestions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"), index=True)
    # The end user the partner asked for (CodeTether-End-User), if any.
    end_user_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    create_payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)


class PartnerEmbedSession(Base):
    """A short-lived client secret for the embedded task element (``POST /v1/partner/embed_sessions``):
    a bearer credential of one end user, stored as a SHA-256 hash. Its id is not secret: the frame
    URL carries it so the frame page knows whose origins may frame it."""

    __tablename__ = "partner_embed_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"), index=True)
    end_user_id: Mapped[str] = mapped_column(ForeignKey("partner_end_users.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The cap (USD) given to every task created with this secret; null: the caller's own choice.
    max_cost_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
