"""REST schemas of the task API. They never travel into Temporal: routes map them explicitly."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from codetether.api.rest.schemas.safe import StoredText
from codetether.core.jsonsafe import MAX_DEPTH, UnsafeJSON, check_json
from codetether.tasks.contracts import ActionKindName, TaskEventType, TaskStatusName
from codetether.tasks.service import DESCRIPTION_LIMIT, MAX_COST_LIMIT, METADATA_LIMIT, TITLE_LIMIT
from codetether.files.service import MAX_ATTACHMENTS
from codetether.tasks.tags import MAX_TAGS, TAG_MAX_LENGTH, TAG_PATTERN

AgentType = Literal["build", "plan", "general", "explore"]
Tag = Annotated[str, Field(min_length=1, max_length=TAG_MAX_LENGTH, pattern=TAG_PATTERN, examples=["crm:lead"])]


class FileAttachmentIn(BaseModel):
    """A file uploaded with POST /v1/automation/files."""

    model_config = ConfigDict(extra="forbid")
    file_id: str = Field(min_length=1, max_length=40, pattern=r"^file_[0-9a-z]{1,35}$", examples=["file_01j0000000000000000000000"])


class UrlAttachmentIn(BaseModel):
    """A file the service downloads when the task starts (same address rules as webhook URLs)."""

    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2000, examples=["https://example.com/report.pdf"])
    name: str | None = Field(default=None, min_length=1, max_length=255,
                             description="The file's name in the workspace; default: the URL's last path segment.")


class TaskCreate(StoredText):
    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "title": "Analyze customer feedback",
                    "description": "Summarize the main themes of this feedback: ...",
                    "agent_type": "general",
                    "model": "demo",
                    "webhook_url": "https://example.com/hooks/codetether",
                }
            ]
        },
    )

    title: Annotated[str, Field(min_length=1, max_length=TITLE_LIMIT)]
    description: str | None = Field(default=None, max_length=DESCRIPTION_LIMIT, description="The instructions for the agent.")
    prompt: str | None = Field(default=None, max_length=DESCRIPTION_LIMIT, description="Alias of description.")
    agent_type: AgentType = "general"
    model: str | None = Field(default=None, max_length=100, description="A name from GET /v1/automation/models.")
    priority: int = Field(default=0, ge=-1000, le=1000, description="Higher runs first when slots are scarce.")
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            f"Returned as given; at most 16 KiB of JSON, nested at most {MAX_DEPTH} levels, integers within "
            "±(2^53 - 1), no NaN/Infinity, no NUL in strings."
        ),
    )
    codebase_id: str | None = Field(default=None, max_length=40)
    webhook_url: str | None = Field(
        default=None, max_length=2000, description="Receives the task's webhook_events (default: needs_input and the final event)."
    )
    callback_url: str | None = Field(
        default=None,
        max_length=2000,
        description="Receives exactly one POST: the task's terminal event (a resume URL, e.g. Zapier's or n8n's).",
    )
    webhook_events: list[TaskEventType] | None = Field(
        default=None,
        min_length=1,
        max_length=7,
        description="Event types webhook_url receives; default task.needs_input and the three terminal events.",
    )
    webhook_secret: str | None = Field(default=None, min_length=8, max_length=300)
    notify_email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    input_timeout_seconds: float | None = Field(
        default=None, gt=0, le=60 * 60 * 24 * 30, description="Fail with input_timeout if a question waits longer."
    )
    max_turns: int | None = Field(default=None, ge=1, le=1000, description="Most model turns the agent may take.")
    output_schema: dict[str, Any] | None = Field(
        default=None,
        description="A JSON Schema (draft 2020-12, root `type: object`, at most 16 KiB) the answer must match; "
        "the finished task then carries it as `result_json`.",
        examples=[{"type": "object", "properties": {"sentiment": {"type": "string", "enum": ["positive", "negative"]}},
                   "required": ["sentiment"]}],
    )
    max_cost_usd: float | None = Field(
        default=None, gt=0, le=MAX_COST_LIMIT,
        description="The most this task may spend on model turns (USD). The turn that would pass it asks first "
        "(or fails, with the budget's on_exhaust: fail).",
    )
    require_approval: Literal["plan"] | None = Field(
        default=None,
        description='`"plan"`: the agent first writes a plan (as a `plan` task would) and the task waits, '
        "`needs_input` with a `required_action` of kind `approval`, until a person approves it; then the "
        "task's `agent_type` (default `build` here) carries it out in the same workspace. A rejection's "
        "message goes back to the agent, which revises the plan.",
    )
    tags: list[Tag] = Field(
        default_factory=list, max_length=MAX_TAGS,
        description="Labels to find the task by (list filter `tag`, bulk cancel); repeats are dropped.",
    )

    attachments: list[FileAttachmentIn | UrlAttachmentIn] = Field(
        default_factory=list, max_length=MAX_ATTACHMENTS,
        description="Input files: each `{\"file_id\"}` (an upload) or `{\"url\", \"name\"?}` (downloaded by the "
        "service, at most 25 MiB, under the webhook URL address rules). The agent finds each under "
        "`attachments/<name>` in its workspace. Another user's or an expired file_id is 422 `file_not_found`; "
        "a refused URL 422 `invalid_attachment_url`.",
    )

    @field_validator("tags")
    @classmethod
    def _dedupe_tags(cls, v: list[str]) -> list[str]:
        return list(dict.fromkeys(v))

    @field_validator("webhook_url", "callback_url", mode="before")
    @classmethod
    def _blank_url(cls, v: Any) -> Any:
        # Zapier and n8n send empty strings for optional fields the user left empty.
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("webhook_events")
    @classmethod
    def _dedupe_events(cls, v: list[str] | None) -> list[str] | None:
        return list(dict.fromkeys(v)) if v is not None else None

    @field_validator("title")
    @classmethod
    def _title_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("title must not be blank")
        return v.strip()

    @field_validator("metadata")
    @classmethod
    def _metadata_size(cls, v: dict[str, Any]) -> dict[str, Any]:
        try:
            check_json(v, root="metadata")
        except UnsafeJSON as err:
            raise PydanticCustomError(err.code, "{message} at {path}", {"message": err.message, "path": err.path}) from None
        if len(json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode()) > METADATA_LIMIT:
            raise ValueError("metadata must be at most 16 KiB of JSON")
        return v

    @model_validator(mode="after")
    def _approval_builds(self) -> "TaskCreate":
        # A plan to approve is carried out by a build agent unless the caller names the type.
        if self.require_approval is not None and "agent_type" not in self.model_fields_set:
            self.agent_type = "build"
        return self

    @model_validator(mode="after")
    def _description_or_prompt(self) -> "TaskCreate":
        if self.description is None and self.prompt is not None:
            self.description = self.prompt
        if self.description is None or not self.description.strip():
            raise ValueError("description (or its alias prompt) is required")
        return self


class TaskError(BaseModel):
    code: str
    message: str


class TaskProgress(BaseModel):
    message: str
    percent: int | None = None
    updated_at: str


class RequiredActionOut(BaseModel):
    id: str
    kind: ActionKindName = Field(
        description="`question`: the agent asks; `approval`: approve or reject `artifact` (a plan); "
        "`budget`: approve or reject spending more."
    )
    prompt: str
    asked_at: str
    reply_url: str | None = Field(
        default=None,
        description="A signed link (`/r/<token>`) that answers this one question without an API key; "
        "single use, expiring. Null when the server has no reply secret configured.",
    )
    options: list[str] | None = Field(default=None, description="The answers offered (send one as `choice`), or null.")
    answer_schema: dict[str, Any] | None = Field(
        default=None, description="A JSON Schema the `answer` must match, or null."
    )
    artifact: ActionArtifactOut | None = Field(default=None, description="The artifact under review (an approval's plan), or null.")


class ChangedFile(BaseModel):
    path: str
    status: Literal["added", "modified", "deleted", "renamed"]
    additions: int
    deletions: int


class TaskChangesOut(BaseModel):
    files: list[ChangedFile]
    additions: int
    deletions: int


class TaskGit(BaseModel):
    base_commit: str | None
    branch: str | None
    commit: str | None
    pushed: bool
    pr_url: str | None


class ArtifactOut(BaseModel):
    id: str
    name: str
    kind: Literal["patch", "plan", "findings", "output", "file"]
    size: int
    sha256: str
    url: str


class ActionArtifactOut(ArtifactOut):
    content: str | None = Field(default=None, description="The artifact's text (a plan in Markdown), when it is text.")


class TaskUsage(BaseModel):
    turns: int
    tool_calls: int
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = Field(0, description="Of `input_tokens`, those the provider read from its prompt cache.")
    reasoning_tokens: int = Field(0, description="Of `output_tokens`, those the model spent reasoning.")
    cost_usd: float | None = Field(
        None, description="What the model turns cost in US dollars at the provider's published prices; "
        "null when a price is unknown (or the task predates cost tracking).")


class AttachmentOut(BaseModel):
    file_id: str | None = Field(description="Null for a URL the service has not downloaded yet.")
    name: str
    size: int | None
    content_type: str | None
    sha256: str | None


class TaskPublic(BaseModel):
    task_id: str
    run_id: str
    title: str
    description: str
    agent_type: str
    model: str
    priority: int
    metadata: dict[str, Any]
    tags: list[str] = Field(default_factory=list)
    codebase_id: str | None
    status: TaskStatusName
    created_at: str
    started_at: str | None
    completed_at: str | None
    runtime_seconds: float | None
    result: str | None
    result_summary: str | None
    result_json: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None
    max_cost_usd: float | None = None
    require_approval: Literal["plan"] | None = None
    error: TaskError | None
    retry_count: int
    progress: TaskProgress | None
    required_action: RequiredActionOut | None
    webhook_url: str | None
    callback_url: str | None
    changes: TaskChangesOut | None = None
    git: TaskGit | None = None
    artifacts: list[ArtifactOut] | None = None
    attachments: list[AttachmentOut] = Field(default_factory=list)
    usage: TaskUsage | None = None


class TaskList(BaseModel):
    data: list[TaskPublic]
    next_cursor: str | None


class CancelFilter(BaseModel):
    """Which of the caller's tasks to cancel: the list's filters (``tag`` and ``status`` take one
    value or a list; a task must have every given tag)."""

    model_config = ConfigDict(extra="forbid")
    status: TaskStatusName | list[TaskStatusName] | None = None
    tag: Tag | Annotated[list[Tag], Field(min_length=1, max_length=MAX_TAGS)] | None = None
    agent_type: AgentType | None = None
    model: str | None = Field(default=None, max_length=100)
    created_before: str | None = Field(default=None, max_length=40, json_schema_extra={"format": "date-time"})
    created_after: str | None = Field(default=None, max_length=40, json_schema_extra={"format": "date-time"})


class TasksCancel(BaseModel):
    """Either ``task_ids`` or ``filter``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"filter": {"tag": "batch:42"}}],
        "oneOf": [{"required": ["task_ids"]}, {"required": ["filter"]}],
    })
    # Not nullable: one of the two is given, the other left out.
    task_ids: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(default=None, min_length=1, max_length=1000)  # type: ignore[assignment]
    filter: CancelFilter = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _one_of(self) -> "TasksCancel":
        if (self.task_ids is None) == (self.filter is None):
            raise ValueError("give either task_ids or filter")
        return self


class TasksCancelled(BaseModel):
    cancelled: list[str]
    skipped: list[str]
