"""Webhook tables: subscriptions, deliveries, delivery attempts and A2A push-notification configs.

Written by ``/v1/webhooks`` and the A2A push-config methods; deliveries and attempts are written by
``codetether/webhooks/`` (routing, then the DeliveryWorkflow's activity).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from codetether.core.ids import utcnow
from codetether.core.models.base import Base


class WebhookSubscription(Base):
    __tablename__ = "webhook_subscriptions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[Any]] = mapped_column(default=list)
    # Sealed ("sealed:v1:" + Fernet token) when CODETETHER_CODEBASE_KEY is set (core/secretbox.py).
    secret: Mapped[str] = mapped_column(String(1000))
    # Older secrets still signed with during a rotation, as [{"secret", "expires_at"}] (sealed too).
    previous_secrets: Mapped[list[Any]] = mapped_column(default=list)
    description: Mapped[str | None] = mapped_column(String(500), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="active")
    disabled_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    failing_since: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # An optional static header sent on every delivery (for receivers that cannot check an HMAC).
    header_token_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    header_token_value: Mapped[str | None] = mapped_column(String(500), nullable=True)


class WebhookDelivery(Base):
    """One event sent to one destination (a subscription or a task's own webhook_url)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_deliveries_sub_created", "subscription_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    subscription_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    user_id: Mapped[str] = mapped_column(String(40), index=True)
    task_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    event_id: Mapped[str] = mapped_column(String(40), index=True)
    event_type: Mapped[str] = mapped_column(String(40))
    url: Mapped[str] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The body of an event that is not in task_events (the `ping` of POST /v1/webhooks/{id}/test).
    payload: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Set on a redelivery: the delivery it repeats (same event, same webhook-id).
    redelivery_of: Mapped[str | None] = mapped_column(String(40), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Set for an A2A push notification: the config it goes to (a2a_push_configs).
    push_config_id: Mapped[str | None] = mapped_column(String(40), nullable=True)


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"
    __table_args__ = (UniqueConstraint("delivery_id", "attempt", name="uq_attempt_delivery_n"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    response_body: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class A2APushConfig(Base):
    """An A2A push-notification config of a task: where the task's status updates are POSTed
    (through the durable webhook delivery, signed like a task's own webhook)."""

    __tablename__ = "a2a_push_configs"

    # The id is the client's (or a generated one) and names the config within its task only:
    # the key is (task_id, id), so two tasks may use the same id.
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True, index=True)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(40), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    # The client's own token, echoed as X-A2A-Notification-Token so it can tell our calls apart.
    token: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # How to authenticate to the receiver (sent as "Authorization: <scheme> <credentials>").
    auth_scheme: Mapped[str | None] = mapped_column(String(40), nullable=True)
    auth_credentials: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
