"""Task tables: the task read model, its event log, its artifacts and the agent's transcript.

Temporal owns each task's execution; these rows answer ``/v1/automation/tasks`` (and the A2A and
MCP faces) without a worker. Written by ``codetether/tasks/`` (launch, events) and the agent's
activities (transcript, artifacts).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from codetether.core.ids import utcnow
from codetether.core.models.base import Base


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_user_created", "user_id", "created_at", "id"),
        Index("ix_tasks_user_status", "user_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    run_id: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    agent_type: Mapped[str] = mapped_column(String(20))
    model: Mapped[str] = mapped_column(String(100))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    codebase_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    result: Mapped[str | None] = mapped_column(Text, nullable=True)
    result_summary: Mapped[str | None] = mapped_column(String(500), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(100), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    required_action: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    webhook_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    # Sealed when CODETETHER_CODEBASE_KEY is set (core/secretbox.py).
    webhook_secret: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    notify_email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    # The whole conversation with the model, carried into follow-up runs.
    conversation: Mapped[list[Any]] = mapped_column(default=list)
    run_count: Mapped[int] = mapped_column(Integer, default=1)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    request_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Kept so a follow-up run waits for answers as long as the first run did.
    input_timeout_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The message that starts the current follow-up run, kept until the run is under way so
    # the reconciler can start it again if the API died before the workflow started.
    pending_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Receives only the task's first terminal event, once (a resume URL: Zapier, n8n's Wait node).
    callback_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    # The terminal event sent to callback_url; set when that delivery is created, so a later
    # run's terminal event never reaches the resume URL a second time.
    callback_event_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # The event types webhook_url receives; null means the default (needs_input + terminal).
    webhook_events: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    # The caller's labels (CONTRACT §11); null on rows made before tags existed reads as [].
    tags: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    # CONTRACT §11: the JSON Schema the answer must match, and the answer as an object.
    output_schema: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # "plan" (CONTRACT §12): the agent's plan waits for a person's approval before any change.
    require_approval: Mapped[str | None] = mapped_column(String(20), nullable=True)
    result_json: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # CONTRACT §13: the most this task may spend on model turns (raised by a budget approval).
    max_cost_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    # CONTRACT §11: the task's input files, [{file_id, name, size, content_type, sha256}]; an
    # attachment given by URL holds {url, name} until the worker has fetched it (docs/files.md).
    attachments: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    # The coding agent (docs/agent.md): the per-task turn budget and the results of its work.
    max_turns: Mapped[int | None] = mapped_column(Integer, nullable=True)
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    git: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    artifacts: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)


class TaskEvent(Base):
    __tablename__ = "task_events"
    __table_args__ = (UniqueConstraint("task_id", "seq", name="uq_task_events_task_seq"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(String(40), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(40))
    # Indexed: an A2A task that is a follow-up run is found by its run id.
    run_id: Mapped[str] = mapped_column(String(40), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The compact JSON body exactly as webhooks and SSE carry it.
    body: Mapped[str] = mapped_column(Text)


class TaskArtifact(Base):
    """A file a task produced (patch, plan.md, findings.md, a tool's whole output) or a workspace
    checkpoint (kind ``checkpoint``, internal: never listed or downloadable)."""

    __tablename__ = "task_artifacts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(String(40))
    run_id: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(20))
    media_type: Mapped[str] = mapped_column(String(100), default="text/plain; charset=utf-8")
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AgentMessage(Base):
    """The agent's transcript, one row per message: activities read and append it, so the
    conversation travels by reference instead of through every activity's input."""

    __tablename__ = "agent_messages"
    __table_args__ = (UniqueConstraint("run_id", "seq", name="uq_agent_messages_run_seq"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int] = mapped_column(Integer)
    message: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
