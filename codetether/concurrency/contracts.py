"""Dataclasses of the per-user concurrency workflow: slot requests, grants, releases and its
snapshot query; and the names by which other code reaches it (and it reaches a task) without
importing a workflow class."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

# The concurrency workflow's type and its signals (as recorded in histories: never rename).
CONCURRENCY_WORKFLOW = "ConcurrencyWorkflow"
REQUEST_SLOT_SIGNAL = "request_slot"
RELEASE_SLOT_SIGNAL = "release_slot"
# The signal a slot holder receives when its slot is granted (``TaskWorkflow.grant_slot``).
GRANT_SLOT_SIGNAL = "grant_slot"


def concurrency_workflow_id(owner_id: str) -> str:
    return f"concurrency-{owner_id}"


@dataclass
class SlotRequest:
    task_id: str
    priority: int
    requested_at: str
    # The owner's running limit as of this request, so a tier change applies to the live queue.
    limit: int | None = None


@dataclass
class SlotRequestInput:
    owner_id: str
    limit: int
    task_id: str
    priority: int
    requested_at: str


@dataclass
class SlotRelease:
    task_id: str


@dataclass
class SlotGrant:
    slot_owner: str


@dataclass
class ConcurrencyInput:
    owner_id: str
    limit: int
    waiting: list[SlotRequest] = field(default_factory=list)
    holders: list[str] = field(default_factory=list)


@dataclass
class ConcurrencyResult:
    owner_id: str
    granted: int


@dataclass
class ConcurrencySnapshot:
    owner_id: str
    limit: int
    holders: list[str]
    waiting: list[str]
