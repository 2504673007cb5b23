"""Dataclasses the agent's workflow code and activities exchange: messages, tool calls, model
turns, workspaces and the loop's carried state. Pure data, safe in the workflow sandbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from codetether.files.contracts import Attachment


# ApplicationError types raised by the model-turn activities (Temporal matches non-retryable types by name).
PROVIDER_CLIENT_ERROR = "ProviderClientError"
PROVIDER_TRANSIENT_ERROR = "ProviderTransientError"
MODEL_NOT_CONFIGURED = "ModelNotConfigured"
# ApplicationError types of the agent's activities.
WORKSPACE_ERROR = "WorkspaceError"  # the repository cannot be cloned or prepared (non-retryable)
WORKSPACE_MISSING = "WorkspaceMissing"  # this worker no longer has the workspace: prepare it again
TOKEN_BUDGET_EXCEEDED = "TokenBudgetExceeded"
# The next turn would pass the task's max_cost_usd or the user's monthly budget (CONTRACT §13).
BUDGET_EXCEEDED = "BudgetExceeded"


class AgentErrorCode:
    MAX_TURNS = "max_turns_exceeded"
    TOKEN_BUDGET = "token_budget_exceeded"
    WORKSPACE = "workspace_unavailable"
    # Provider answers that can never succeed when sent again (CONTRACT §10): they fail at once.
    CONTEXT_LENGTH = "context_length_exceeded"
    QUOTA = "provider_quota_exceeded"
    REQUEST_TOO_LARGE = "request_too_large"
    STREAMING_REFUSED = "provider_streaming_refused"
    # The model's answer (or a tool call) stayed cut at the output limit after continuing.
    OUTPUT_TRUNCATED = "output_truncated"
    BUDGET = "budget_exceeded"


@dataclass
class Usage:
    turns: int = 0
    tool_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    # Of input_tokens, how many the provider read from its prompt cache; of output_tokens, how
    # many were reasoning. cost_usd is None once any turn's price was unknown.
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float | None = 0.0

    def add_turn(self, turn: "ModelTurnResult") -> None:
        self.input_tokens += turn.input_tokens
        self.output_tokens += turn.output_tokens
        self.cached_input_tokens += turn.cached_input_tokens
        self.reasoning_tokens += turn.reasoning_tokens
        self.cost_usd = None if self.cost_usd is None or turn.cost_usd is None else round(self.cost_usd + turn.cost_usd, 10)

    def public(self) -> dict[str, Any]:
        """The task's ``usage`` object (CONTRACT §6 and §10)."""
        return {"turns": self.turns, "tool_calls": self.tool_calls, "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens, "cached_input_tokens": self.cached_input_tokens,
                "reasoning_tokens": self.reasoning_tokens, "cost_usd": self.cost_usd}


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
    # The task's input files, placed under attachments/ (CONTRACT §11).
    attachments: list[Attachment] = field(default_factory=list)


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
    # The task's output schema: the turn offers ``submit_result`` with it (agent/structured.py).
    output_schema: dict[str, Any] | None = None
    # The run's workspace, when it has one: a turn that runs on the worker holding it runs the
    # leading read-only calls there (see ``ModelTurnResult.tool_results``).
    workspace: WorkspaceInfo | None = None


@dataclass
class ModelTurnResult:
    # "tools": the model called tools (run them, then another turn); "final": it answered.
    kind: str
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    attempt: int = 1
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    # The turn's price (None: unknown for this model), computed by the activity.
    cost_usd: float | None = 0.0
    # The first ``len(tool_results)`` tool calls, already run by the turn itself (read-only calls
    # on the workspace's own worker); their results are in the transcript. Recorded in the
    # history with the turn, so a replay never runs them again.
    tool_results: list[ToolCallResult] = field(default_factory=list)


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
class KeepPlanInput:
    """Keep the plan written so far (plan.md, else the model's answer) as revision ``revision``
    of the task's plan artifact, for a person to approve (``require_approval: "plan"``)."""

    task_id: str
    run_id: str
    owner_id: str
    workspace: WorkspaceInfo
    final_text: str
    revision: int = 1


@dataclass
class KeepPlanResult:
    # The artifact's public JSON shape, and its text (shown where the plan is reviewed).
    artifact: dict[str, Any]
    content: str


@dataclass
class CleanupInput:
    task_id: str
    path: str


@dataclass
class CleanupResult:
    removed: bool


@dataclass
class RaiseBudgetInput:
    """An approved ``budget`` action (CONTRACT §13): the cap that stopped the turn grows."""

    task_id: str
    owner_id: str
    add_usd: float
    # "task" (its max_cost_usd) or "user" (the monthly budget).
    bound: str


@dataclass
class AgentCarry:
    """The agent loop's place, kept through continue-as-new (the transcript stays in the database)."""

    seq: int
    usage: Usage
    workspace: WorkspaceInfo | None = None
    checkpoint_id: str | None = None
    # Messages not yet written to the transcript (they go with the next model turn).
    append: list[TranscriptEntry] = field(default_factory=list)
    # Answers that did not match the output schema so far.
    invalid_answers: int = 0
    # A task with ``require_approval: "plan"``: "plan" while it plans (None once approved), the
    # plan revisions kept so far and the latest one's artifact.
    phase: str | None = None
    plan_revision: int = 0
    plan_artifact: dict[str, Any] | None = None


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
    # Opaque fields a provider needs back on the next request (Gemini's thought signatures per
    # tool call id, Anthropic's signed thinking blocks). Kept in the transcript, never shown.
    provider_data: dict[str, Any] | None = None
