"""Dataclasses of notification email: the email workflow's input and result, its type name and id."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


# The email workflow's type (as recorded in histories: never rename) and its id for one event.
EMAIL_WORKFLOW = "EmailWorkflow"


def email_workflow_id(event_id: str) -> str:
    return f"email-{event_id}"


EMAIL_SENT = "sent"
EMAIL_SKIPPED = "skipped"  # the task or event is gone, or the task no longer has notify_email


@dataclass
class EmailInput:
    event_id: str
    task_id: str


@dataclass
class EmailResult:
    event_id: str
    outcome: str
    recipient: str | None = None
