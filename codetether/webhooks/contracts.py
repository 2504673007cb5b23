"""Dataclasses of webhook delivery: the delivery workflow's input and result, one attempt's input
and outcome, the delivery and attempt status names, and the workflow's type name and id."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from codetether.tasks.contracts import EVENT_TYPES

# The delivery workflow's type (as recorded in histories: never rename) and its id for one delivery.
DELIVERY_WORKFLOW = "DeliveryWorkflow"


def delivery_workflow_id(delivery_id: str) -> str:
    return f"webhook-{delivery_id}"


# Events about an account rather than a task (codetether/webhooks/account_events.py): subscriptions
# may ask for them by name or with "*"; a task's own webhook_url never gets them.
ACCOUNT_EVENT_TYPES = (
    "budget.threshold_reached",
    "end_user.created",
    "end_user.claimed",
    "sponsorship.threshold_reached",
    "sponsorship.exhausted",
)
# What a subscription's `events` may name (besides "*").
SUBSCRIBABLE_EVENT_TYPES = (*EVENT_TYPES, *ACCOUNT_EVENT_TYPES)

# Delivery statuses as the deliveries endpoint shows them.
DELIVERY_PENDING = "pending"
DELIVERY_DELIVERED = "delivered"
DELIVERY_FAILED = "failed"
DELIVERY_CANCELLED = "cancelled"

# Outcomes of one HTTP attempt.
ATTEMPT_DELIVERED = "delivered"  # 2xx in time
ATTEMPT_RETRY = "retry"  # failed; another attempt follows after next_delay seconds
ATTEMPT_GONE = "gone"  # 410: the destination asked to be removed
ATTEMPT_EXHAUSTED = "exhausted"  # failed and it was the last attempt
ATTEMPT_SKIPPED = "skipped"  # the subscription was disabled or deleted meanwhile


@dataclass
class DeliveryInput:
    delivery_id: str
    # Seconds between attempts (CODETETHER_WEBHOOK_RETRY_SCHEDULE when the delivery was created):
    # len(schedule) + 1 attempts in all.
    schedule: list[float]
    # Fraction of each wait drawn at random in [-jitter, +jitter] so retries of many deliveries
    # spread out instead of arriving at a recovering receiver together.
    jitter: float = 0.1


@dataclass
class DeliveryResult:
    delivery_id: str
    status: str
    attempts: int


@dataclass
class DeliveryAttemptInput:
    delivery_id: str
    attempt: int
    # How long the workflow plans to wait before the next attempt; None on the last attempt.
    planned_delay: float | None


@dataclass
class DeliveryAttemptResult:
    outcome: str
    status_code: int | None = None
    # Seconds until the next attempt (planned delay, or longer when Retry-After asks for it).
    next_delay: float | None = None
