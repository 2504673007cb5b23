"""Dataclasses that cross the Temporal boundary for a task: its workflow input and result, its
updates and queries, the recorded transitions, and the task vocabulary (statuses, events, error
codes, search attributes, patch ids). Pure data, safe in the workflow sandbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

from codetether.agent.contracts import AgentCarry, ChatMessage
from codetether.files.contracts import ATTACHMENT_UNAVAILABLE, Attachment

# The search attributes the task code sets; they live in core with the client factory that
# registers them on the namespace.
from codetether.core.search_attributes import SA_MODEL, SA_OWNER, SA_STATUS, SEARCH_ATTRIBUTES  # noqa: F401


class TaskStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    NEEDS_INPUT = "needs_input"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


# The statuses in their documented order (filters, metrics and error messages list them so).
TASK_STATUSES = tuple(s.value for s in TaskStatus)
TERMINAL_STATUSES = frozenset({TaskStatus.COMPLETED.value, TaskStatus.FAILED.value, TaskStatus.CANCELLED.value})
WAITING_STATUSES = TERMINAL_STATUSES | {TaskStatus.NEEDS_INPUT.value}

EVENT_TYPES = (
    "task.created",
    "task.started",
    "task.progress",
    "task.needs_input",
    "task.completed",
    "task.failed",
    "task.cancelled",
)
NEEDS_INPUT_EVENT = "task.needs_input"
TERMINAL_EVENTS = frozenset({"task.completed", "task.failed", "task.cancelled"})

# The same vocabularies as types, for schemas that publish them as enums (REST, MCP). Spelled out
# because type checkers need literal values; tests/unit/test_vocabulary.py keeps them equal.
TaskStatusName = Literal["queued", "running", "needs_input", "completed", "failed", "cancelled"]
TaskEventType = Literal[
    "task.created", "task.started", "task.progress", "task.needs_input", "task.completed", "task.failed", "task.cancelled"
]


class ErrorCode:
    """Stable error codes a task can end with (``error.code``)."""

    PROVIDER_REJECTED = "provider_rejected"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    MODEL_UNAVAILABLE = "model_unavailable"
    AGENT_ERROR = "agent_error"
    INPUT_TIMEOUT = "input_timeout"
    INTERNAL = "internal_error"
    # The answer never matched the task's output_schema (CONTRACT §11).
    OUTPUT_INVALID = "output_invalid"
    # An attachment URL could not be fetched and stored (CONTRACT §11).
    ATTACHMENT_UNAVAILABLE = ATTACHMENT_UNAVAILABLE

AGENT_LOOP_PATCH = "agent-tool-loop-v1"
# Leaner tasks: transitions are written by local activities (no activity round trip through the
# server), the slot release rides on the record that ends or parks a run, and a task without a
# codebase prepares its scratch workspace only when a tool first needs it. Older executions replay
# the paths they started on.
LEAN_TASK_PATCH = "lean-task-v1"

# The task workflow's type and updates, by which services reach it without importing the
# workflow class (as recorded in histories: never rename). The workflow id is the task_id.
TASK_WORKFLOW = "TaskWorkflow"
PROVIDE_INPUT_UPDATE = "provide_input"
SEND_MESSAGE_UPDATE = "send_message"


@dataclass
class TaskInput:
    task_id: str
    run_id: str
    owner_id: str
    title: str
    description: str
    agent_type: str = "general"
    model: str = "demo"
    priority: int = 0
    # Running-task limit of the owner's tier; None means unlimited.
    concurrency_limit: int | None = None
    # Messages of earlier runs of the same task (a follow-up keeps the conversation).
    history: list[ChatMessage] = field(default_factory=list)
    # Set on a follow-up run: the new user message that starts it, and who sent it how.
    follow_up: str | None = None
    follow_up_via: str | None = None
    follow_up_sender: str | None = None
    input_timeout_seconds: float | None = None
    request_id: str | None = None
    # Carried through continue-as-new so a long conversation keeps its place.
    carried: "TaskCarryOver | None" = None
    # The coding agent (codetether/agent/loop.py): the task's codebase and turn budget.
    codebase_id: str | None = None
    max_turns: int | None = None
    # A JSON Schema the answer must match (CONTRACT §11); the result then carries result_json.
    output_schema: dict[str, Any] | None = None
    # The task's input files (CONTRACT §11); a URL item has no file_id until the worker fetched it.
    attachments: list[Attachment] | None = None
    # "plan": the agent plans first and a person approves the plan before it changes anything
    # (CONTRACT §12).
    require_approval: str | None = None


@dataclass
class TaskCarryOver:
    messages: list[ChatMessage] = field(default_factory=list)
    pending_messages: list[str] = field(default_factory=list)
    retry_count: int = 0
    turns: int = 0
    started: bool = False
    agent: "AgentCarry | None" = None


@dataclass
class TaskResult:
    task_id: str
    run_id: str
    status: str
    result: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    result_json: dict[str, Any] | None = None


# What a person is asked for (``required_action.kind``, CONTRACT §12): an answer to the agent's
# question, a decision on an artifact (the plan of a ``require_approval: "plan"`` task), or a
# decision on spending more.
ACTION_QUESTION = "question"
ACTION_APPROVAL = "approval"
ACTION_BUDGET = "budget"
ACTION_KINDS = (ACTION_QUESTION, ACTION_APPROVAL, ACTION_BUDGET)
# Kinds answered with a ``decision``.
DECISION_KINDS = frozenset({ACTION_APPROVAL, ACTION_BUDGET})
APPROVE = "approve"
REJECT = "reject"
DECISIONS = (APPROVE, REJECT)
ActionKindName = Literal["question", "approval", "budget"]
DecisionName = Literal["approve", "reject"]


@dataclass
class RequiredAction:
    id: str
    kind: str
    prompt: str
    asked_at: str
    # The answers offered (a question asked with options), or None for free text.
    options: list[str] | None = None
    # A JSON Schema the ``answer`` must match, or None.
    answer_schema: dict[str, Any] | None = None
    # The artifact under review (an approval's plan), as its public JSON shape.
    artifact: dict[str, Any] | None = None


# How a message reached the task (``via`` in ``task.message`` events).
VIA_API = "api"
VIA_LINK = "link"
VIA_EMAIL = "email"
# A log-only event: who answered a question or continued the conversation, and how. Kept in the
# task's event log (and SSE) but never sent to webhooks or by email.
MESSAGE_EVENT = "task.message"


@dataclass
class ProvideInputInput:
    message: str
    required_action_id: str | None = None
    # Who sent it and by which channel; the defaults are what histories from before had.
    via: str = VIA_API
    sender: str | None = None
    # The structured parts of the answer (CONTRACT §12); ``message`` is then the text the model
    # reads. ``choice`` is one of the action's options, ``answer`` matches its answer_schema,
    # ``decision`` (approve or reject) answers an approval or a budget.
    choice: str | None = None
    answer: Any = None
    decision: str | None = None


@dataclass
class ProvideInputResult:
    accepted: bool
    # Why it was refused: "not_waiting" or "stale_action".
    reason: str | None = None
    status: str | None = None


@dataclass
class SendMessageInput:
    message: str
    via: str = VIA_API
    sender: str | None = None


@dataclass
class SendMessageResult:
    # "reply" (answered a pending question) or "queued" (delivered at the agent's next turn).
    delivered_as: str
    status: str


@dataclass
class TaskSnapshot:
    task_id: str
    run_id: str
    status: str
    required_action: RequiredAction | None = None
    turns: int = 0
    pending_messages: int = 0


@dataclass
class TaskChanges:
    """Columns of the task row that an event changes; None leaves a column as it is."""

    status: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    result: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    retry_count: int | None = None
    progress: dict[str, Any] | None = None
    required_action: RequiredAction | None = None
    clear_required_action: bool = False
    clear_error: bool = False
    conversation: list[ChatMessage] | None = None
    # The coding agent's results (CONTRACT §6), as their public JSON shapes.
    changes: dict[str, Any] | None = None
    git: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    artifacts: list[dict[str, Any]] | None = None
    # Copy the run's transcript (agent_messages) into the conversation, in the same write.
    conversation_from_run: bool = False
    # The structured answer (CONTRACT §11); set with ``result`` when the task has an output schema.
    result_json: dict[str, Any] | None = None


@dataclass
class RecordEventInput:
    task_id: str
    run_id: str
    event_id: str
    event_type: str | None
    changes: TaskChanges
    occurred_at: str
    # Extra fields of this one event's payload (``message`` of ``task.message``).
    details: dict[str, Any] | None = None


@dataclass
class RecordEventResult:
    seq: int | None
    recorded: bool


@dataclass
class RecordEventsInput:
    """Transitions written by one local activity, in order (``created`` and ``started`` together
    when no slot wait happens). With ``release_slot_owner`` the same activity then frees the
    task's running slot, so the slot is never free before the record that ended or parked it."""

    task_id: str
    events: list[RecordEventInput]
    release_slot_owner: str | None = None


@dataclass
class RecordEventsResult:
    recorded: int


@dataclass
class RunAgentInput:
    task_id: str
    run_id: str
    owner_id: str
    model: str
    agent_type: str
    messages: list[ChatMessage]


@dataclass
class RunAgentResult:
    # "final": the model answered; "question": it called ask_user and waits for a person.
    kind: str
    new_messages: list[ChatMessage]
    text: str = ""
    question: str | None = None
    tool_call_id: str | None = None
    attempt: int = 1
