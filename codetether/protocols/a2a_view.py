"""A task as the A2A protocol sees it (a2a-sdk's protobuf types), built from database rows.

Used by the A2A face (``codetether/api/a2a/handler.py``) for its answers and streams, and by the webhook
fan-out (``codetether/webhooks/routing.py``) for the bodies of A2A push notifications, so both agree.

Mapping: ``queued`` → submitted, ``running`` → working, ``needs_input`` → input-required (the
question is the status message), ``completed``/``failed``/``cancelled`` → completed/failed/
canceled. The A2A task id and its ``contextId`` are both the CodeTether ``task_id``: a context is
one conversation, and a message to a finished one starts a follow-up run of the same task.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from a2a.types.a2a_pb2 import (
    Artifact,
    Message,
    Part,
    Role,
    StreamResponse,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)
from a2a.types.a2a_pb2 import (
    Task as A2ATask,
)
from google.protobuf.json_format import MessageToDict
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from codetether.core.ids import as_utc, parse_iso
from codetether.core.models import Task
from codetether.tasks.contracts import WAITING_STATUSES

STATE_OF: dict[str, int] = {
    "queued": TaskState.TASK_STATE_SUBMITTED,
    "running": TaskState.TASK_STATE_WORKING,
    "needs_input": TaskState.TASK_STATE_INPUT_REQUIRED,
    "completed": TaskState.TASK_STATE_COMPLETED,
    "failed": TaskState.TASK_STATE_FAILED,
    "cancelled": TaskState.TASK_STATE_CANCELED,
}
STATUS_OF: dict[int, str] = {v: k for k, v in STATE_OF.items()}
# Event types that change the A2A status (task.progress is a working update with a message).
STATUS_EVENTS = {
    "task.created": "queued",
    "task.started": "running",
    "task.progress": "running",
    "task.needs_input": "needs_input",
    "task.completed": "completed",
    "task.failed": "failed",
    "task.cancelled": "cancelled",
}
# After these the A2A stream of a run ends (terminal, or interrupted for input).
FINAL_STATUSES = WAITING_STATUSES
RESULT_ARTIFACT_ID = "result"


def _timestamp(when: datetime | None) -> Timestamp | None:
    when = as_utc(when)
    if when is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(when)
    return ts


def _agent_message(task_id: str, text: str, message_id: str) -> Message:
    return Message(
        message_id=message_id, context_id=task_id, task_id=task_id, role=Role.ROLE_AGENT, parts=[Part(text=text)]
    )


def status_message(task_id: str, status: str, payload: dict[str, Any], message_id: str) -> Message | None:
    """The status message of a state: the question, the error, the progress note."""
    if status == "needs_input":
        prompt = (payload.get("required_action") or {}).get("prompt")
        return _agent_message(task_id, prompt, message_id) if prompt else None
    if status == "failed":
        err = payload.get("error") or {}
        text = f"{err.get('code', 'failed')}: {err.get('message', '')}".strip()
        return _agent_message(task_id, text, message_id)
    if status == "running":
        note = (payload.get("progress") or {}).get("message")
        return _agent_message(task_id, note, message_id) if note else None
    return None


def task_status(task: Task) -> TaskStatus:
    payload = {
        "required_action": task.required_action,
        "error": {"code": task.error_code, "message": task.error_message} if task.error_code else None,
        "progress": task.progress,
    }
    status = TaskStatus(state=STATE_OF.get(task.status, TaskState.TASK_STATE_UNSPECIFIED))
    msg = status_message(task.id, task.status, payload, f"{task.run_id}-status")
    if msg is not None:
        status.message.CopyFrom(msg)
    ts = _timestamp(task.updated_at)
    if ts is not None:
        status.timestamp.CopyFrom(ts)
    return status


def result_artifact(task_id: str, result: str) -> Artifact:
    return Artifact(artifact_id=RESULT_ARTIFACT_ID, name="result", description="The agent's final answer",
                    parts=[Part(text=result, media_type="text/plain")])


def artifacts(task: Task) -> list[Artifact]:
    if task.status == "completed" and task.result is not None:
        return [result_artifact(task.id, task.result)]
    return []


def history(task: Task, limit: int | None = None) -> list[Message]:
    """The conversation as A2A messages: what users said and what the agent answered."""
    out: list[Message] = []
    for i, m in enumerate(task.conversation or []):
        role, content = m.get("role"), m.get("content") or ""
        if role not in ("user", "assistant") or not content or m.get("tool_calls"):
            continue
        out.append(
            Message(
                message_id=f"{task.id}-{i}",
                context_id=task.id,
                task_id=task.id,
                role=Role.ROLE_USER if role == "user" else Role.ROLE_AGENT,
                parts=[Part(text=content)],
            )
        )
    if not out and task.description:
        # Before the first turn is stored the conversation is only the task's instructions.
        out.append(Message(message_id=f"{task.id}-0", context_id=task.id, task_id=task.id, role=Role.ROLE_USER,
                           parts=[Part(text=task.description)]))
    if limit is not None:
        out = out[-limit:] if limit > 0 else []
    return out


def to_a2a_task(task: Task, *, history_length: int | None = None, include_artifacts: bool = True) -> A2ATask:
    meta = Struct()
    meta.update({"title": task.title, "run_id": task.run_id, "model": task.model, "agent_type": task.agent_type})
    return A2ATask(
        id=task.id,
        context_id=task.id,
        status=task_status(task),
        artifacts=artifacts(task) if include_artifacts else [],
        history=history(task, history_length),
        metadata=meta,
    )


def event_updates(task_id: str, event_type: str, body: str) -> list[TaskStatusUpdateEvent | TaskArtifactUpdateEvent]:
    """The A2A stream events of one stored task event (its compact JSON body)."""
    status = STATUS_EVENTS.get(event_type)
    if status is None:
        return []
    payload = json.loads(body)
    data = payload.get("data") or {}
    out: list[TaskStatusUpdateEvent | TaskArtifactUpdateEvent] = []
    if status == "completed" and data.get("result") is not None:
        out.append(TaskArtifactUpdateEvent(task_id=task_id, context_id=task_id,
                                           artifact=result_artifact(task_id, data["result"]), last_chunk=True))
    st = TaskStatus(state=STATE_OF[status])
    msg = status_message(task_id, status, data, payload.get("id") or f"{task_id}-{event_type}")
    if msg is not None:
        st.message.CopyFrom(msg)
    ts = _timestamp(parse_iso(payload.get("created_at")))
    if ts is not None:
        st.timestamp.CopyFrom(ts)
    meta = Struct()
    meta.update({"event": event_type, "event_id": payload.get("id"), "run_id": payload.get("run_id")})
    out.append(TaskStatusUpdateEvent(task_id=task_id, context_id=task_id, status=st, metadata=meta))
    return out


def push_body(task_id: str, event_type: str, body: str) -> str | None:
    """The JSON body of an A2A push notification for a stored event: a StreamResponse with the
    status update (``statusUpdate``), or None for events that push nothing."""
    updates = [u for u in event_updates(task_id, event_type, body) if isinstance(u, TaskStatusUpdateEvent)]
    if not updates or event_type == "task.progress":
        return None
    response = StreamResponse(status_update=updates[-1])
    return json.dumps(MessageToDict(response), separators=(",", ":"), ensure_ascii=False)
