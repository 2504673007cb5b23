"""REST schemas of ``/v1/webhooks``: subscriptions, deliveries and their attempts."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from codetether.api.rest.schemas.safe import StoredText
from codetether.webhooks.contracts import SUBSCRIBABLE_EVENT_TYPES
from codetether.webhooks.subscriptions import (
    DEFAULT_HEADER_TOKEN_NAME,
    HEADER_TOKEN_NAME_MAX,
    HEADER_TOKEN_NAME_PATTERN,
    HEADER_TOKEN_VALUE_MAX,
    HEADER_TOKEN_VALUE_MIN,
    HEADER_TOKEN_VALUE_PATTERN,
)

WebhookStatus = Literal["active", "disabled"]


# Declared for clients; an unknown type is answered 422 invalid_event_type by the service.
EVENTS_ITEMS = {"items": {"type": "string", "enum": ["*", *SUBSCRIBABLE_EVENT_TYPES]}}


class HeaderToken(BaseModel):
    """A static header sent on every delivery, for receivers that cannot check an HMAC over the raw
    body (Make's webhooks compare it in a condition). Write-only: reads show it masked."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "X-CodeTether-Token", "value": "a-long-random-shared-token"}]}
    )

    name: str = Field(
        default=DEFAULT_HEADER_TOKEN_NAME,
        min_length=1,
        max_length=HEADER_TOKEN_NAME_MAX,
        pattern=HEADER_TOKEN_NAME_PATTERN,
        description="The header's name (not one CodeTether sets itself).",
    )
    value: str = Field(
        min_length=HEADER_TOKEN_VALUE_MIN,
        max_length=HEADER_TOKEN_VALUE_MAX,
        pattern=HEADER_TOKEN_VALUE_PATTERN,
        description="The header's value: printable ASCII, 16 to 500 characters. Never shown again.",
    )


class HeaderTokenPublic(BaseModel):
    name: str
    value: str = Field(description="Masked: only the last four characters are shown.")


class WebhookCreate(StoredText):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://hooks.zapier.com/hooks/standard/123/abc",
                    "events": ["task.completed", "task.failed"],
                    "description": "Zap: finished tasks",
                }
            ]
        },
    )

    url: Annotated[str, Field(min_length=1, max_length=2000, description="https URL on a public address.",
                              json_schema_extra={"format": "uri", "pattern": "^https?://"})]
    events: Annotated[
        list[str],
        Field(min_length=1, max_length=20, description='Event types to receive, or ["*"] for all of them.',
              json_schema_extra=EVENTS_ITEMS),
    ]
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=300,
        description="Signing secret; generated (whsec_ + base64 of 32 random bytes) when omitted.",
    )
    description: str | None = Field(default=None, max_length=500)
    header_token: HeaderToken | None = Field(
        default=None, description="Sent as that header on every delivery; masked in every read."
    )


class WebhookUpdate(StoredText):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=2000)
    events: list[str] | None = Field(default=None, min_length=1, max_length=20, json_schema_extra=EVENTS_ITEMS)
    status: WebhookStatus | None = None
    description: str | None = Field(default=None, max_length=500)
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=300,
        description="Rotate to this secret; the old one keeps signing alongside it for 24 hours.",
    )
    rotate_secret: bool = Field(
        default=False, description="Rotate to a newly generated secret (shown in this response only)."
    )
    header_token: HeaderToken | None = Field(
        default=None, description="Set or replace the header token; null removes it."
    )


class WebhookPublic(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str | None
    status: WebhookStatus
    disabled_reason: str | None
    secret: str = Field(description="Shown in full only when created or rotated; masked otherwise.")
    previous_secret_expires_at: str | None = Field(
        description="While a rotated-out secret still signs deliveries: when it stops."
    )
    header_token: HeaderTokenPublic | None = Field(description="The header sent on every delivery (value masked).")
    created_at: str
    updated_at: str


class WebhookCreated(WebhookPublic):
    notice: str | None = Field(
        default=None, description="Set in an idempotent replay: the secret was shown once and is masked here."
    )


class WebhookList(BaseModel):
    data: list[WebhookPublic]


class AttemptPublic(BaseModel):
    delivery_id: str
    event_id: str
    attempt: int = Field(description="1 for the first attempt.")
    status_code: int | None = Field(description="The receiver's HTTP status, null when no answer came.")
    duration_ms: float | None
    error: str | None
    response_body: str | None = Field(description="The first 2 KiB of the receiver's answer.")
    next_attempt_at: str | None = Field(description="When the next retry is due, if one follows.")
    created_at: str


class DeliveryPublic(BaseModel):
    id: str
    event_id: str = Field(description="Also the webhook-id header: the same on every retry and redelivery.")
    event_type: str
    task_id: str | None
    url: str
    status: Literal["pending", "delivered", "failed", "cancelled"]
    attempt_count: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: str | None
    redelivery_of: str | None
    created_at: str
    attempts: list[AttemptPublic]


class DeliveryList(BaseModel):
    data: list[DeliveryPublic]
    next_cursor: str | None
