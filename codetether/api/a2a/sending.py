"""``SendMessage`` / ``SendStreamingMessage`` of the A2A face (``handler.py``): deliver the message.

No task id or context → a new task; the id of a task waiting for input → the answer; of a running
task → a message for its next turn; of a finished one → a follow-up run (like
``POST /v1/automation/tasks/{id}/messages``). The ``messageId`` is the idempotency key, claimed in
the same store as REST's Idempotency-Key: the same message again returns the same task.
"""

from __future__ import annotations

import json
from typing import Any

from a2a.server.context import ServerCallContext
from a2a.types.a2a_pb2 import Message, SendMessageRequest, TaskPushNotificationConfig
from a2a.utils.errors import InvalidParamsError, InvalidRequestError, TaskNotFoundError
from google.protobuf.json_format import MessageToDict

from codetether.agent.prompts import AGENT_TYPE_CHOICES
from codetether.api.a2a.access import HTTP_REQUEST_ID_KEY, find_task, load_task, principal_of
from codetether.api.a2a.errors import a2a_error
from codetether.api.auth import Principal
from codetether.core import idempotency as idem
from codetether.api.edge.idempotency import caller_scope
from codetether.api.state import AppState
from codetether.core.errors import ServiceError
from codetether.core.models import A2APushConfig, Task
from codetether.protocols import a2a_push
from codetether.tasks import conversation
from codetether.tasks import service as taskops
from codetether.tasks.launch import NewTask


def message_text(msg: Message) -> str:
    pieces: list[str] = []
    for part in msg.parts:
        if part.text:
            pieces.append(part.text)
        elif part.HasField("data"):
            pieces.append(json.dumps(MessageToDict(part.data), ensure_ascii=False))
        elif part.url:
            pieces.append(part.url)
    return "\n".join(p for p in pieces if p).strip()


def _options(params: SendMessageRequest) -> dict[str, Any]:
    """Task options a client may pass in the message's or the request's metadata."""
    out: dict[str, Any] = {}
    for source in (params.metadata, params.message.metadata):
        if source is not None and len(source.fields):
            out.update(MessageToDict(source))
    return out


async def deliver(state: AppState, params: SendMessageRequest, context: ServerCallContext) -> tuple[Task, int]:
    """Delivers the message; returns the task and the seq its new events come after."""
    db = state.db
    msg = params.message
    text = message_text(msg)
    if not text:
        raise InvalidParamsError("the message has no text", data={"code": "validation_error"})
    try:
        # REST's input rules, before anything is claimed or stored; a new task's are checked again
        # in full (metadata included) by the task service.
        taskops.check_message(text)
    except ServiceError as err:
        raise a2a_error(err) from None
    target_id = msg.task_id or msg.context_id
    target = await find_task(db, target_id, principal_of(context)) if target_id else None
    if msg.task_id and target is None:
        raise TaskNotFoundError(f"no task {msg.task_id!r}", data={"code": "task_not_found"})
    principal = principal_of(context, "tasks:write" if target is None else "messages:write")

    claim = None
    if msg.message_id:
        fp = idem.fingerprint("A2A", "SendMessage", json.dumps(
            [msg.task_id, msg.context_id, text, _options(params)], sort_keys=True, ensure_ascii=False
        ).encode())
        claim = await idem.claim(db, caller_scope(principal), f"a2a:{msg.message_id}", "A2A", "SendMessage", fp)
        if claim.outcome is idem.Outcome.REPLAY and claim.response is not None:
            stored = json.loads(claim.response.body)
            return await load_task(db, stored["task_id"], principal), int(stored.get("after", 0))
        if claim.outcome is idem.Outcome.MISMATCH:
            raise InvalidParamsError(
                "this messageId was already used for a different message; use a new messageId",
                data={"code": "idempotency_key_reused"},
            )
        if claim.outcome is idem.Outcome.IN_FLIGHT:
            raise InvalidRequestError(
                "a message with this messageId is still being processed; retry after it has finished",
                data={"code": "idempotency_key_in_use"},
            )
    reserved = False
    try:
        if target is None:
            reserved = claim is not None
            task = await _new_task(state, params, principal, text, context, claim)
            after = 0
        else:
            after = target.last_seq
            delivery = await conversation.send_message(
                db, await state.temporal(), state.settings, target, text,
                concurrency_limit=principal.concurrency_limit, request_id=context.state.get(HTTP_REQUEST_ID_KEY),
            )
            task = delivery.task
        await _configure_push(state, params, task, principal)
    except ServiceError as err:
        if claim is not None and claim.record_id is not None:
            await idem.release(db, claim.record_id, resource_reserved=reserved)
        raise a2a_error(err) from None
    except BaseException:
        if claim is not None and claim.record_id is not None:
            await idem.release(db, claim.record_id, resource_reserved=reserved)
        raise
    if claim is not None and claim.record_id is not None:
        body = json.dumps({"task_id": task.id, "after": after}).encode()
        await idem.complete(db, claim.record_id, idem.StoredResponse(200, body, {}))
    return task, after


async def _new_task(state: AppState, params, principal: Principal, text: str, context, claim) -> Task:
    opts = _options(params)
    for name in ("agent_type", "model", "title", "codebase_id"):
        if opts.get(name) is not None and not isinstance(opts[name], str):
            raise ServiceError(422, "validation_error", f"metadata.{name} must be a string")
    agent_type = opts.get("agent_type") or "general"
    if agent_type not in AGENT_TYPE_CHOICES:
        raise ServiceError(422, "validation_error", f"agent_type must be one of {', '.join(AGENT_TYPE_CHOICES)}")
    spec = taskops.resolve_model(state.catalog, opts.get("model"))
    # Anything but an object is refused by the task service's input rules, not dropped.
    metadata = opts["metadata"] if opts.get("metadata") is not None else {}
    new = NewTask(
        owner_id=principal.user_id,
        # A title the caller gives follows REST's rules; only a derived one is cut to fit.
        title=opts.get("title") or conversation.derive_title(text)[:taskops.TITLE_LIMIT],
        description=text,
        agent_type=agent_type,
        model=spec.name,
        metadata=metadata,
        codebase_id=opts.get("codebase_id"),
        concurrency_limit=principal.concurrency_limit,
        request_id=context.state.get(HTTP_REQUEST_ID_KEY),
    )
    task_id = idem.resource_id(claim.resource_seed, "task") if claim is not None and claim.resource_seed else None
    return await taskops.start_task(state.db, await state.temporal(), state.settings, new, task_id=task_id)


async def _configure_push(state: AppState, params: SendMessageRequest, task: Task, principal: Principal) -> None:
    if not params.HasField("configuration") or not params.configuration.HasField("task_push_notification_config"):
        return
    cfg = params.configuration.task_push_notification_config
    if cfg.url:
        await save_push(state, cfg, task, principal)


async def save_push(state: AppState, cfg: TaskPushNotificationConfig, task: Task, principal: Principal) -> A2APushConfig:
    auth = cfg.authentication if cfg.HasField("authentication") else None
    return await a2a_push.create_push_config(
        state.db, state.settings, task_id=task.id, user_id=principal.user_id, url=cfg.url,
        token=cfg.token or None, auth_scheme=auth.scheme if auth else None,
        auth_credentials=auth.credentials if auth else None, config_id=cfg.id or None,
    )
