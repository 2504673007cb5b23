"""A task as the A2A protocol sees it (a2a-sdk's protobuf types), built from database rows.

Used by the A2A face (``codetether/api/a2a/handler.py``) for its answers and streams, and by the webhook
fan-out (``codetether/webhooks/routing.py``) for the bodies of A2A push notifications, so both agree.

Mapping: ``queued`` → submitted, ``running`` → working, ``needs_input`` → input-required (the
question is the status message), ``completed``/``failed``/``cancelled`` → completed/failed/
canceled. A context is one CodeTether task (``contextId`` is the ``task_id``) and each of its
runs is one A2A task (``codetether/protocols/a2a_runs.py``): the first run's id is the
``task_id``, a follow-up run's its ``run_id``.
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
from google.protobuf.struct_pb2 import Struct, Value
from google.protobuf.timestamp_pb2 import Timestamp

from codetether.core.ids import as_utc, parse_iso
from codetether.protocols.a2a_runs import RunState
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


def _agent_message(task_id: str, context_id: str, text: str, message_id: str) -> Message:
    return Message(
        message_id=message_id, context_id=context_id, task_id=task_id, role=Role.ROLE_AGENT, parts=[Part(text=text)]
    )


def _action_data(action: dict[str, Any]) -> dict[str, Any]:
    keep = ("id", "kind", "prompt", "options", "answer_schema", "artifact")
    out = {k: action.get(k) for k in keep}
    out["kind"] = out["kind"] or "question"
    return json.loads(json.dumps(out))


def status_message(task_id: str, context_id: str, status: str, payload: dict[str, Any], message_id: str) -> Message | None:
    """The status message of a state: the question, the error, the progress note."""
    if status == "needs_input":
        action = payload.get("required_action") or {}
        prompt = action.get("prompt")
        if not prompt:
            return None
        msg = _agent_message(task_id, context_id, prompt, message_id)
        # The action's kind, options, schema and plan as a data part (CONTRACT §12): a client
        # answers with a message whose data part holds choice, answer or decision.
        data = Value()
        data.struct_value.update({"required_action": _action_data(action)})
        msg.parts.append(Part(data=data, media_type="application/json"))
        return msg
    if status == "failed":
        err = payload.get("error") or {}
        text = f"{err.get('code', 'failed')}: {err.get('message', '')}".strip()
        return _agent_message(task_id, context_id, text, message_id)
    if status == "running":
        note = (payload.get("progress") or {}).get("message")
        return _agent_message(task_id, context_id, note, message_id) if note else None
    return None


def task_status(run: RunState) -> TaskStatus:
    payload = {
        "required_action": run.required_action,
        "error": {"code": run.error_code, "message": run.error_message} if run.error_code else None,
        "progress": run.progress,
    }
    status = TaskStatus(state=STATE_OF.get(run.status, TaskState.TASK_STATE_UNSPECIFIED))
    msg = status_message(run.a2a_id, run.context_id, run.status, payload, f"{run.run_id}-status")
    if msg is not None:
        status.message.CopyFrom(msg)
    ts = _timestamp(run.updated_at)
    if ts is not None:
        status.timestamp.CopyFrom(ts)
    return status


def result_artifact(result: str, result_json: dict[str, Any] | None = None) -> Artifact:
    """The final answer as text and, for a task with an output schema, as a data part too."""
    parts = [Part(text=result, media_type="text/plain")]
    if result_json is not None:
        data = Value()
        data.struct_value.update(result_json)
        parts.append(Part(data=data, media_type="application/json"))
    return Artifact(artifact_id=RESULT_ARTIFACT_ID, name="result", description="The agent's final answer",
                    parts=parts)


def artifacts(run: RunState) -> list[Artifact]:
    if run.status == "completed" and run.result is not None:
        return [result_artifact(run.result, run.result_json)]
    return []


def to_a2a_task(run: RunState, *, history_length: int | None = None, include_artifacts: bool = True) -> A2ATask:
    """``history_length``: None for the whole history, 0 for none, N for the last N messages."""
    meta = Struct()
    # camelCase like every A2A field (the TCK checks the whole payload, metadata included).
    meta.update({"title": run.title, "runId": run.run_id, "model": run.model, "agentType": run.agent_type})
    history = run.history if history_length is None else (run.history[-history_length:] if history_length > 0 else [])
    return A2ATask(
        id=run.a2a_id,
        context_id=run.context_id,
        status=task_status(run),
        artifacts=artifacts(run) if include_artifacts else [],
        history=history,
        metadata=meta,
    )


def event_updates(task_id: str, context_id: str, event_type: str, body: str) -> list[TaskStatusUpdateEvent | TaskArtifactUpdateEvent]:
    """The A2A stream events of one stored task event (its compact JSON body); ``task_id`` is the
    A2A id of the event's run."""
    status = STATUS_EVENTS.get(event_type)
    if status is None:
        return []
    payload = json.loads(body)
    data = payload.get("data") or {}
    out: list[TaskStatusUpdateEvent | TaskArtifactUpdateEvent] = []
    if status == "completed" and data.get("result") is not None:
        out.append(TaskArtifactUpdateEvent(task_id=task_id, context_id=context_id,
                                           artifact=result_artifact(data["result"], data.get("result_json")),
                                           last_chunk=True))
    st = TaskStatus(state=STATE_OF[status])
    msg = status_message(task_id, context_id, status, data, payload.get("id") or f"{task_id}-{event_type}")
    if msg is not None:
        st.message.CopyFrom(msg)
    ts = _timestamp(parse_iso(payload.get("created_at")))
    if ts is not None:
        st.timestamp.CopyFrom(ts)
    meta = Struct()
    meta.update({"event": event_type, "event_id": payload.get("id"), "run_id": payload.get("run_id")})
    out.append(TaskStatusUpdateEvent(task_id=task_id, context_id=context_id, status=st, metadata=meta))
    return out


def push_body(task_id: str, context_id: str, event_type: str, body: str) -> str | None:
    """The JSON body of an A2A push notification for a stored event: a StreamResponse with the
    status update (``statusUpdate``), or None for events that push nothing."""
    updates = [u for u in event_updates(task_id, context_id, event_type, body) if isinstance(u, TaskStatusUpdateEvent)]
    if not updates or event_type == "task.progress":
        return None
    response = StreamResponse(status_update=updates[-1])
    return json.dumps(MessageToDict(response), separators=(",", ":"), ensure_ascii=False)
