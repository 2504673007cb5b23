"""What makes an email reply count once: the reply addresses already used and the providers'
webhook signatures already seen.

``email_reply_uses`` is written by :mod:`codetether.replies.inbound_email` when a reply to the email
about event ``seq`` of a task is delivered (a second reply to the same address is refused);
``inbound_webhook_signatures`` by ``api/inbound/`` for each Mailgun signature it accepts, until the
signature would be too old anyway.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from codetether.core.ids import utcnow
from codetether.core.models.base import Base


class EmailReplyUse(Base):
    __tablename__ = "email_reply_uses"

    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    used_at: Mapped[datetime] = mapped_column(default=utcnow)


class InboundWebhookSignature(Base):
    __tablename__ = "inbound_webhook_signatures"

    # SHA-256 of provider, token and signature: the post itself is never stored.
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
