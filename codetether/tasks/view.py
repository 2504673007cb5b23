"""The public shape of a task and of an event, built from database rows.

Used by the API responses, the event log, SSE and webhook payloads, so all four agree field for
field with the contract's task object.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from codetether.core.ids import as_utc, iso, parse_iso
from codetether.core.models import Task

SUMMARY_LIMIT = 500


def summarize(text: str | None, limit: int = SUMMARY_LIMIT) -> str | None:
    if text is None:
        return None
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip() + "…"


def runtime_seconds(task: Task) -> float | None:
    started = as_utc(task.started_at)
    if started is None:
        return None
    end = as_utc(task.completed_at)
    if end is None:
        return None
    return round((end - started).total_seconds(), 3)


def task_error(task: Task) -> dict[str, str] | None:
    if not task.error_code:
        return None
    return {"code": task.error_code, "message": task.error_message or ""}


def task_to_dict(task: Task) -> dict[str, Any]:
    return {
        "task_id": task.id,
        "run_id": task.run_id,
        "title": task.title,
        "description": task.description,
        "agent_type": task.agent_type,
        "model": task.model,
        "priority": task.priority,
        "metadata": task.metadata_ or {},
        "tags": task.tags or [],
        "codebase_id": task.codebase_id,
        "status": task.status,
        "created_at": iso(task.created_at),
        "started_at": iso(task.started_at),
        "completed_at": iso(task.completed_at),
        "runtime_seconds": runtime_seconds(task),
        "result": task.result,
        "result_summary": task.result_summary,
        "result_json": task.result_json,
        "output_schema": task.output_schema,
        "max_cost_usd": task.max_cost_usd,
        "require_approval": task.require_approval,
        "error": task_error(task),
        "retry_count": task.retry_count,
        "progress": task.progress,
        "required_action": required_action_public(task),
        "webhook_url": task.webhook_url,
        "callback_url": task.callback_url,
        "changes": task.changes,
        "git": task.git,
        "artifacts": artifact_list(task),
        "attachments": attachment_list(task),
        "usage": task.usage,
    }


def attachment_list(task: Task) -> list[dict[str, Any]]:
    """The task's input files as the contract shows them (a URL not yet fetched has no file_id)."""
    keys = ("file_id", "name", "size", "content_type", "sha256")
    return [{k: a.get(k) for k in keys} for a in task.attachments or []]


# The fields of ``required_action`` in their documented order (CONTRACT §12); an action recorded
# before options and approvals existed shows them as null.
ACTION_FIELDS = ("id", "kind", "prompt", "asked_at", "reply_url", "options", "answer_schema", "artifact")


def required_action_public(task: Task) -> dict[str, Any] | None:
    action = task.required_action
    if not action:
        return None
    out = {name: action.get(name) for name in ACTION_FIELDS}
    out["kind"] = out["kind"] or "question"
    artifact = out["artifact"]
    if isinstance(artifact, dict) and artifact.get("id"):
        out["artifact"] = {**artifact, "url": f"/v1/automation/tasks/{task.id}/artifacts/{artifact['id']}"}
    return out


def artifact_list(task: Task) -> list[dict[str, Any]] | None:
    """The task's artifacts with their download path (``GET …/tasks/{id}/artifacts/{artifact_id}``)."""
    if task.artifacts is None:
        return None
    return [{**a, "url": f"/v1/automation/tasks/{task.id}/artifacts/{a['id']}"} for a in task.artifacts]


def event_payload(task: Task, event_id: str, event_type: str, created_at: datetime) -> dict[str, Any]:
    data = task_to_dict(task)
    return {
        "id": event_id,
        "event": event_type,
        "created_at": iso(created_at),
        "timestamp": iso(created_at),
        "task_id": task.id,
        "run_id": task.run_id,
        "status": task.status,
        "result": task.result,
        "result_json": task.result_json,
        "error": data["error"],
        "duration_seconds": data["runtime_seconds"],
        "metadata": data["metadata"],
        "data": data,
    }


def dataclass_dict(obj: Any) -> Any:
    return asdict(obj) if obj is not None else None


__all__ = ["task_to_dict", "required_action_public", "event_payload", "summarize", "parse_iso", "dataclass_dict"]
