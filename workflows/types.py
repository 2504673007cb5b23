"""Dataclasses that cross the Temporal boundary, shared by the API, the workflows and the activities.

One dataclass in and one out for every workflow, activity, signal, update and query. This module
imports nothing with side effects so the workflow sandbox can load it as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class TaskStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    NEEDS_INPUT = "needs_input"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


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


class ErrorCode:
    """Stable error codes a task can end with (``error.code``)."""

    PROVIDER_REJECTED = "provider_rejected"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    MODEL_UNAVAILABLE = "model_unavailable"
    AGENT_ERROR = "agent_error"
    INPUT_TIMEOUT = "input_timeout"
    INTERNAL = "internal_error"


# ApplicationError types raised by activities (Temporal matches non-retryable types by name).
PROVIDER_CLIENT_ERROR = "ProviderClientError"
PROVIDER_TRANSIENT_ERROR = "ProviderTransientError"
MODEL_NOT_CONFIGURED = "ModelNotConfigured"


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass
class ChatMessage:
    """A provider-neutral chat message; backends translate to and from their wire formats."""

    role: str  # "system" | "user" | "assistant" | "tool"
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None


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
    # The coding agent (workflows/agent_loop.py): the task's codebase and turn budget.
    codebase_id: str | None = None
    max_turns: int | None = None


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


@dataclass
class RequiredAction:
    id: str
    kind: str
    prompt: str
    asked_at: str


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


# Search attributes operators filter on in the Temporal UI (registered by `codetether dev` and by
# core.temporal.ensure_search_attributes). The workflow id is the task_id.
from temporalio.common import SearchAttributeKey  # noqa: E402

SA_OWNER = SearchAttributeKey.for_keyword("CodeTetherOwner")
SA_STATUS = SearchAttributeKey.for_keyword("CodeTetherStatus")
SA_MODEL = SearchAttributeKey.for_keyword("CodeTetherModel")
SEARCH_ATTRIBUTES = (SA_OWNER, SA_STATUS, SA_MODEL)


# --- Webhook delivery (workflows/delivery.py, activities/webhooks.py) ---

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


# ---- email notifications (workflows/email_notify.py) ----------------------------------------------

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


# ---- the coding agent (workflows/agent_loop.py, activities/agent.py, activities/workspace.py) ----

AGENT_LOOP_PATCH = "agent-tool-loop-v1"
# Leaner tasks: transitions are written by local activities (no activity round trip through the
# server), the slot release rides on the record that ends or parks a run, and a task without a
# codebase prepares its scratch workspace only when a tool first needs it. Older executions replay
# the paths they started on.
LEAN_TASK_PATCH = "lean-task-v1"
# ApplicationError types of the agent's activities.
WORKSPACE_ERROR = "WorkspaceError"  # the repository cannot be cloned or prepared (non-retryable)
WORKSPACE_MISSING = "WorkspaceMissing"  # this worker no longer has the workspace: prepare it again
TOKEN_BUDGET_EXCEEDED = "TokenBudgetExceeded"


class AgentErrorCode:
    MAX_TURNS = "max_turns_exceeded"
    TOKEN_BUDGET = "token_budget_exceeded"
    WORKSPACE = "workspace_unavailable"


@dataclass
class Usage:
    turns: int = 0
    tool_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass
class WorkspaceInfo:
    # The task queue of the worker holding the workspace: every tool call goes there.
    task_queue: str
    path: str
    base_commit: str | None = None
    ref: str | None = None
    # False for a scratch workspace (a task without codebase_id).
    has_repository: bool = False


@dataclass
class PrepareWorkspaceInput:
    task_id: str
    run_id: str
    owner_id: str
    codebase_id: str | None
    # Rebuild from a checkpoint (another worker took over): the base and the diff on top of it.
    base_commit: str | None = None
    checkpoint_id: str | None = None


@dataclass
class TranscriptEntry:
    seq: int
    message: ChatMessage


@dataclass
class ModelTurnInput:
    task_id: str
    run_id: str
    owner_id: str
    model: str
    agent_type: str
    # Messages the workflow adds before the turn (opening prompt, replies, refused calls).
    append: list[TranscriptEntry] = field(default_factory=list)
    # The seq of the assistant message this turn writes.
    seq: int = 0
    # Tokens the task has used so far (the worker refuses a turn past its token budget).
    tokens_used: int = 0


@dataclass
class ModelTurnResult:
    # "tools": the model called tools (run them, then another turn); "final": it answered.
    kind: str
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    attempt: int = 1


@dataclass
class ToolCallInput:
    task_id: str
    run_id: str
    owner_id: str
    agent_type: str
    workspace: WorkspaceInfo
    call: ToolCall
    # Where the result goes in the transcript.
    seq: int


@dataclass
class ToolCallResult:
    call_id: str
    name: str
    ok: bool
    # One line for progress and history; the whole result is in the transcript.
    summary: str
    changed_files: bool = False
    # The whole output when it was too large for the transcript.
    artifact_id: str | None = None


@dataclass
class CheckpointInput:
    task_id: str
    run_id: str
    owner_id: str
    workspace: WorkspaceInfo


@dataclass
class CheckpointResult:
    checkpoint_id: str | None
    size: int = 0


@dataclass
class FinalizeInput:
    task_id: str
    run_id: str
    owner_id: str
    agent_type: str
    codebase_id: str | None
    workspace: WorkspaceInfo
    final_text: str
    # Whether to push/open a PR (only on success).
    publish: bool = True


@dataclass
class FinalizeResult:
    changes: dict[str, Any] | None = None
    git: dict[str, Any] | None = None
    artifacts: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class CleanupInput:
    task_id: str
    path: str


@dataclass
class CleanupResult:
    removed: bool


@dataclass
class AgentCarry:
    """The agent loop's place, kept through continue-as-new (the transcript stays in the database)."""

    seq: int
    usage: Usage
    workspace: WorkspaceInfo | None = None
    checkpoint_id: str | None = None
    # Messages not yet written to the transcript (they go with the next model turn).
    append: list[TranscriptEntry] = field(default_factory=list)
