"""OAuth 2.0 tables: registered clients, authorization codes, token families, the
``/oauth/authorize`` sign-in sessions and the authorization requests awaiting consent.

Written by ``codetether/api/oauth/`` (``/oauth/authorize``, ``/oauth/token``, ``/oauth/revoke``,
``/v1/oauth/clients``) and ``codetether oauth-clients``; access tokens are resolved on every request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from codetether.core.ids import utcnow
from codetether.core.models.base import Base


class OAuthClient(Base):
    __tablename__ = "oauth_clients"

    client_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    client_secret_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    name: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=True)
    redirect_uris: Mapped[list[Any]] = mapped_column(default=list)
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Registered by the client itself (RFC 7591): its name is its own claim, shown as unverified.
    self_registered: Mapped[bool] = mapped_column(Boolean, default=False)


class OAuthAuthorizationCode(Base):
    __tablename__ = "oauth_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.client_id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    scope: Mapped[str] = mapped_column(String(500))
    code_challenge: Mapped[str | None] = mapped_column(String(200), nullable=True)
    code_challenge_method: Mapped[str | None] = mapped_column(String(10), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # The token family the code produced, revoked if the code is presented again.
    family_id: Mapped[str | None] = mapped_column(String(40), nullable=True)


class OAuthToken(Base):
    __tablename__ = "oauth_tokens"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    family_id: Mapped[str] = mapped_column(String(40), index=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.client_id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    access_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    scope: Mapped[str] = mapped_column(String(500))
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    refresh_expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Set when the refresh token was exchanged for a new pair (rotation).
    rotated_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Random; with the refresh token itself (never stored) it derives the one pair this refresh
    # token rotates into, so a refresh repeated inside the grace window gets that same pair.
    successor_seed: Mapped[str | None] = mapped_column(String(64), nullable=True)


class OAuthSignInSession(Base):
    """A browser signed in at ``/oauth/authorize`` (the cookie holds the token; only its hash is here)."""

    __tablename__ = "oauth_signin_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # Echoed in the consent form: a cross-site page cannot read it, so it cannot approve for the user.
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()


class OAuthAuthorizationRequest(Base):
    """An authorization request shown on the consent page, kept server-side until answered.

    The consent form posts only this row's id (with the session's CSRF token); the OAuth
    parameters approved are the ones validated and stored when the page was shown, so a tampered
    form (a wider ``scope``, another ``code_challenge``) changes nothing. Single use, short-lived,
    bound to the sign-in session that saw it.
    """

    __tablename__ = "oauth_authorization_requests"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.client_id", ondelete="CASCADE"))
    params: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)
