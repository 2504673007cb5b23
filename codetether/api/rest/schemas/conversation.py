"""REST schemas of the conversation routes (replies, messages) and of the event log."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from codetether.api.rest.schemas.safe import StoredText
from codetether.api.rest.schemas.tasks import AgentType, TaskError, TaskPublic
from codetether.agent.asking import OPTION_LENGTH
from codetether.tasks.contracts import DecisionName
from codetether.tasks.service import MESSAGE_LIMIT


def _blank_to_none(v: Any) -> Any:
    # Zapier and n8n send empty strings for optional fields the user left empty.
    return None if isinstance(v, str) and not v.strip() else v


class _Message(StoredText):
    model_config = ConfigDict(extra="forbid")

    message: Annotated[str, Field(min_length=1, max_length=MESSAGE_LIMIT, description="The text for the agent.")]

    @field_validator("message")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("message must not be blank")
        return v


class InputCreate(StoredText):
    """An answer to the pending ``required_action`` (CONTRACT §12): words (``message``), one of its
    ``options`` (``choice``), a value matching its ``answer_schema`` (``answer``), or for an
    ``approval`` or ``budget`` a ``decision``, with ``message`` as the reason."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"message": "Use blue.", "required_action_id": "act_01jd..."},
                {"choice": "blue", "required_action_id": "act_01jd..."},
                {"decision": "reject", "message": "Keep the old API working too.", "required_action_id": "act_01jd..."},
            ]
        },
    )

    required_action_id: str | None = Field(
        default=None,
        max_length=60,
        description="The `required_action.id` being answered; a stale one is refused with 409.",
    )
    message: str | None = Field(
        default=None, max_length=MESSAGE_LIMIT,
        description="The answer in words; with a decision, the reason (a rejection's feedback goes back to the agent).",
    )
    choice: str | None = Field(
        default=None, max_length=OPTION_LENGTH,
        description="One of `required_action.options`; anything else is refused with 422 `invalid_choice`.",
    )
    answer: Any = Field(
        default=None,
        description="A JSON value matching `required_action.answer_schema`; otherwise 422 `invalid_answer`.",
    )
    decision: DecisionName | None = Field(
        default=None,
        description="`approve` or `reject`: required for an `approval` or a `budget` (422 `decision_required`).",
    )

    _blank = field_validator("required_action_id", "message", "choice", "decision", mode="before")(_blank_to_none)

    @model_validator(mode="after")
    def _something(self) -> "InputCreate":
        if self.message is None and self.choice is None and self.answer is None and self.decision is None:
            raise ValueError("send message, choice, answer or decision")
        return self


class MessageCreate(_Message):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"message": "Now make it shorter."}]})


class ConversationMessageCreate(_Message):
    """Zapier's Send Message: continue a conversation (``conversation_id``) or start one."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"message": "Summarize the attached feedback", "model": "demo"},
                {"message": "Now in French", "conversation_id": "task_01jd..."},
            ]
        },
    )

    conversation_id: str | None = Field(
        default=None, max_length=60, description="A task_id returned earlier; omit it to start a new conversation."
    )
    codebase_id: str | None = Field(default=None, max_length=40)
    model: str | None = Field(default=None, max_length=100, description="A name from GET /v1/automation/models.")
    agent_type: AgentType | None = None

    _blank = field_validator("conversation_id", "codebase_id", "model", "agent_type", mode="before")(_blank_to_none)


DeliveredAs = Literal["reply", "queued", "follow_up", "new_task"]


class ConversationTask(TaskPublic):
    """The task object, plus how the message was delivered and the id to continue with."""

    conversation_id: str = Field(description="The task_id; pass it as conversation_id to continue.")
    delivered_as: DeliveredAs = Field(
        description=(
            "`reply`: answered the pending question; `queued`: the running agent reads it at its next turn; "
            "`follow_up`: started a new run of the finished task with the conversation so far; "
            "`new_task`: started a new conversation."
        )
    )


class TaskEventOut(BaseModel):
    """One event of the log: the stored event payload with its ``seq``."""

    seq: int
    id: str
    event: str
    created_at: str
    timestamp: str
    task_id: str
    run_id: str
    status: str
    result: str | None
    error: TaskError | None
    duration_seconds: float | None
    metadata: dict[str, Any]
    data: TaskPublic


class TaskEventList(BaseModel):
    data: list[TaskEventOut]
    has_more: bool = Field(description="More events follow; ask again with after = the last seq.")
