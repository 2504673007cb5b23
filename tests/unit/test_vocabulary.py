"""The task vocabulary is defined once (codetether/tasks/contracts.py); the Literal types that
publish it in schemas must list the same values, in the same order where order is shown."""

from typing import get_args

from codetether.agent.prompts import AGENT_TYPE_CHOICES, AGENT_TYPES
from codetether.api.edge import metrics
from codetether.api.mcp import server as mcp_server
from codetether.api.rest.routes.tasks import STATUS_LIST_PATTERN
from codetether.api.rest.schemas.tasks import AgentType
from codetether.protocols.a2a_view import FINAL_STATUSES, STATE_OF, STATUS_EVENTS
from codetether.tasks import service as taskops
from codetether.tasks.contracts import (
    EVENT_TYPES,
    NEEDS_INPUT_EVENT,
    TASK_STATUSES,
    TERMINAL_EVENTS,
    TERMINAL_STATUSES,
    WAITING_STATUSES,
    TaskEventType,
    TaskStatus,
    TaskStatusName,
)
from codetether.webhooks.routing import TASK_WEBHOOK_EVENTS


def test_status_literal_matches_the_enum():
    assert get_args(TaskStatusName) == tuple(s.value for s in TaskStatus) == TASK_STATUSES


def test_event_literal_matches_the_event_types():
    assert get_args(TaskEventType) == EVENT_TYPES


def test_terminal_events_are_the_terminal_statuses():
    assert TERMINAL_EVENTS == {f"task.{s}" for s in TERMINAL_STATUSES}
    assert TERMINAL_EVENTS < set(EVENT_TYPES) and NEEDS_INPUT_EVENT in EVENT_TYPES
    assert TASK_WEBHOOK_EVENTS == TERMINAL_EVENTS | {NEEDS_INPUT_EVENT}


def test_faces_use_the_shared_statuses():
    assert taskops.STATUSES is TASK_STATUSES
    assert metrics.TASK_STATUSES is TASK_STATUSES
    assert STATUS_LIST_PATTERN == (
        "^ *(queued|running|needs_input|completed|failed|cancelled) *"
        "(, *(queued|running|needs_input|completed|failed|cancelled) *)*$"
    )
    assert FINAL_STATUSES == WAITING_STATUSES


def test_a2a_mappings_cover_the_vocabulary():
    assert set(STATE_OF) == set(TASK_STATUSES)
    assert tuple(STATUS_EVENTS) == EVENT_TYPES
    assert set(STATUS_EVENTS.values()) == set(TASK_STATUSES)


def test_agent_type_literals_match_the_prompts():
    assert get_args(AgentType) == AGENT_TYPES
    assert get_args(mcp_server.AgentType) == AGENT_TYPE_CHOICES
    assert set(AGENT_TYPE_CHOICES) == set(AGENT_TYPES)
