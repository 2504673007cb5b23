"""``SendMessage`` / ``SendStreamingMessage`` of the A2A face (``handler.py``): deliver the message.

An A2A context is a CodeTether task (its conversation) and each run of it an A2A task
(``codetether/protocols/a2a_runs.py``):

- no ``taskId`` and no ``contextId`` → a new task;
- a ``taskId`` → the answer to its question, or a message for the agent's next turn; a finished
  A2A task takes no more messages (UnsupportedOperationError), and a ``contextId`` that is not the
  task's is refused (InvalidParams);
- only a ``contextId`` → a new A2A task in that context: a follow-up run of the finished task
  (``POST /v1/automation/tasks/{id}/messages`` does the same); while a run is still going, the
  message joins it. An unknown ``contextId`` is refused (it cannot become a context id).

``messageId`` is required and is the idempotency key, claimed in the same store as REST's
Idempotency-Key: the same message again returns the same task. Parts are text (``text/*``) or
JSON data; a file (or any other media type) is ContentTypeNotSupportedError. A push config sent
with the message is checked before anything starts.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from a2a.server.context import ServerCallContext
from a2a.types.a2a_pb2 import Message, SendMessageRequest, TaskPushNotificationConfig
from a2a.utils.errors import (
    ContentTypeNotSupportedError,
    InvalidParamsError,
    InvalidRequestError,
    TaskNotFoundError,
    UnsupportedOperationError,
)
from google.protobuf.json_format import MessageToDict

from codetether.agent.prompts import AGENT_TYPE_CHOICES
from codetether.api.a2a.access import (
    HTTP_REQUEST_ID_KEY,
    find_task,
    load_task,
    principal_of,
)
from codetether.api.a2a.errors import a2a_error
from codetether.api.auth import Principal
from codetether.api.edge.idempotency import caller_scope
from codetether.api.state import AppState
from codetether.core import idempotency as idem
from codetether.core.errors import ServiceError
from codetether.core.models import A2APushConfig, Task
from codetether.protocols import a2a_push, a2a_runs
from codetether.tasks import conversation
from codetether.tasks import service as taskops
from codetether.tasks.answers import read_text_answer
from codetether.tasks.contracts import ACTION_QUESTION, DECISION_KINDS, TERMINAL_STATUSES, TaskStatus
from codetether.tasks.launch import NewTask

log = logging.getLogger(__name__)

TEXT_MEDIA_PREFIX = "text/"
DATA_MEDIA_TYPES = ("", "application/json")


@dataclass
class Sent:
    """Where a message went: the task, the run it belongs to (the A2A task) and the seq the
    run's new events come after."""

    task: Task
    run_id: str
    after: int


def message_text(msg: Message) -> str:
    """The message as text: its text parts and JSON data parts; any other part is refused."""
    pieces: list[str] = []
    for part in msg.parts:
        kind = part.WhichOneof("content")
        media = (part.media_type or "").strip().lower()
        if kind == "text" and (not media or media.startswith(TEXT_MEDIA_PREFIX)):
            pieces.append(part.text)
        elif kind == "data" and media in DATA_MEDIA_TYPES:
            pieces.append(json.dumps(MessageToDict(part.data), ensure_ascii=False))
        else:
            shown = media or ("a file" if kind in ("raw", "url") else "an empty part")
            raise ContentTypeNotSupportedError(
                f"unsupported part ({shown}): this agent takes text (text/plain) and JSON data (application/json)",
                data={"code": "content_type_not_supported"},
            )
    return "\n".join(p for p in pieces if p).strip()


ANSWER_KEYS = ("choice", "answer", "decision")


def _answer_of(msg: Message, task: Task) -> dict[str, Any] | None:
    """``{message, choice, answer, decision}`` when ``msg`` answers the task's pending action with
    more than words: a data part holding any of ``choice``, ``answer``, ``decision`` (the status
    message's data part says which the action takes), or words that approve or reject an approval."""
    if task.status != TaskStatus.NEEDS_INPUT.value:
        return None
    words = "\n".join(p.text for p in msg.parts if p.WhichOneof("content") == "text").strip() or None
    for part in msg.parts:
        if part.WhichOneof("content") == "data":
            data = MessageToDict(part.data)
            if isinstance(data, dict) and any(k in data for k in ANSWER_KEYS):
                message = data.get("message") if isinstance(data.get("message"), str) else words
                return {"message": message, **{k: data.get(k) for k in ANSWER_KEYS}}
    if ((task.required_action or {}).get("kind") or ACTION_QUESTION) in DECISION_KINDS and words:
        message, choice, decision = read_text_answer(task.required_action, words)
        return {"message": message, "choice": choice, "answer": None, "decision": decision}
    return None


def _options(params: SendMessageRequest) -> dict[str, Any]:
    """Task options a client may pass in the message's or the request's metadata."""
    out: dict[str, Any] = {}
    for source in (params.metadata, params.message.metadata):
        if source is not None and len(source.fields):
            out.update(MessageToDict(source))
    return out


def push_input(cfg: TaskPushNotificationConfig) -> a2a_push.PushConfigInput:
    auth = cfg.authentication if cfg.HasField("authentication") else None
    return a2a_push.PushConfigInput(
        url=cfg.url, token=cfg.token or None, auth_scheme=auth.scheme if auth else None,
        auth_credentials=auth.credentials if auth else None, config_id=cfg.id or None,
    )


def _sent_push(params: SendMessageRequest) -> a2a_push.PushConfigInput | None:
    if not params.HasField("configuration") or not params.configuration.HasField("task_push_notification_config"):
        return None
    cfg = params.configuration.task_push_notification_config
    return push_input(cfg) if cfg.url or cfg.id else None


async def _target(state: AppState, msg: Message, context: ServerCallContext) -> Task | None:
    """The task the message continues (None: a new task), after the checks that refuse it."""
    principal = principal_of(context)
    if msg.task_id:
        found = await a2a_runs.find_run(state.db, msg.task_id, principal.user_id)
        if found is None:
            raise TaskNotFoundError(f"no task {msg.task_id!r}", data={"code": "task_not_found"})
        task, run_id = found
        if msg.context_id and msg.context_id != task.id:
            raise InvalidParamsError(
                f"contextId {msg.context_id!r} is not the context of task {msg.task_id!r} ({task.id!r})",
                data={"code": "context_mismatch"},
            )
        if run_id != task.run_id or task.status in TERMINAL_STATUSES:
            raise _finished(msg.task_id)
        return task
    if msg.context_id:
        task = await find_task(state.db, msg.context_id, principal)
        if task is None:
            raise InvalidParamsError(
                f"unknown contextId {msg.context_id!r}: leave it out to start a new conversation",
                data={"code": "context_not_found"},
            )
        return task
    return None


def _finished(task_id: str) -> UnsupportedOperationError:
    return UnsupportedOperationError(
        f"task {task_id!r} is finished and takes no more messages; send the message with its contextId "
        "(and no taskId) to continue the conversation in a new task",
        data={"code": "task_terminal"},
    )


async def deliver(state: AppState, params: SendMessageRequest, context: ServerCallContext) -> Sent:
    """Delivers the message; returns where it went."""
    db = state.db
    msg = params.message
    if not msg.message_id:
        raise InvalidParamsError("the message needs a messageId", data={"code": "validation_error"})
    text = message_text(msg)
    if not text:
        raise InvalidParamsError("the message has no text", data={"code": "validation_error"})
    try:
        # REST's input rules, before anything is claimed or stored; a new task's are checked again
        # in full (metadata included) by the task service.
        taskops.check_message(text)
    except ServiceError as err:
        raise a2a_error(err) from None
    target = await _target(state, msg, context)
    principal = principal_of(context, "tasks:write" if target is None else "messages:write")
    push = _sent_push(params)
    if push is not None:
        try:
            await a2a_push.check_push_config(state.settings, push)
            if target is not None:
                await a2a_push.check_room(db, target.id, push.config_id)
        except ServiceError as err:
            raise a2a_error(err) from None

    fp = idem.fingerprint("A2A", "SendMessage", json.dumps(
        [msg.task_id, msg.context_id, text, _options(params)], sort_keys=True, ensure_ascii=False
    ).encode())
    # A resent message (same messageId, same content) is delivered once; a messageId reused for
    # another message is a message of its own (the A2A TCK reuses ids this way), so the key holds both.
    key = "a2a:" + hashlib.sha256(f"{msg.message_id}\n{fp}".encode()).hexdigest()
    claim = await idem.claim(db, caller_scope(principal), key, "A2A", "SendMessage", fp)
    if claim.outcome is idem.Outcome.REPLAY and claim.response is not None:
        stored = json.loads(claim.response.body)
        task = await load_task(db, stored["task_id"], principal)
        return Sent(task, stored.get("run_id") or task.run_id, int(stored.get("after", 0)))
    if claim.outcome is idem.Outcome.IN_FLIGHT:
        raise InvalidRequestError(
            "a message with this messageId is still being processed; retry after it has finished",
            data={"code": "idempotency_key_in_use"},
        )
    reserved = False
    try:
        if target is None:
            reserved = True
            task = await _new_task(state, params, principal, text, context, claim)
            after = 0
        elif (answer := _answer_of(msg, target)) is not None:
            # An answer to the pending action (CONTRACT §12): its data part's choice, answer or
            # decision, or an approval's "approve"/"reject" in words.
            after = target.last_seq
            task = await conversation.provide_input(
                db, await state.temporal(), target, answer.pop("message"), None, sender=principal.email, **answer
            )
        else:
            after = target.last_seq
            delivery = await conversation.send_message(
                db, await state.temporal(), state.settings, target, text,
                concurrency_limit=principal.concurrency_limit, request_id=context.state.get(HTTP_REQUEST_ID_KEY),
                allow_follow_up=not msg.task_id,
            )
            task = delivery.task
        if push is not None:
            await _save_sent_push(state, push, task, principal, created=target is None)
    except ServiceError as err:
        if claim.record_id is not None:
            await idem.release(db, claim.record_id, resource_reserved=reserved)
        if err.code == conversation.TASK_FINISHED:
            raise _finished(msg.task_id) from None
        raise a2a_error(err) from None
    except BaseException:
        if claim.record_id is not None:
            await idem.release(db, claim.record_id, resource_reserved=reserved)
        raise
    if claim.record_id is not None:
        body = json.dumps({"task_id": task.id, "run_id": task.run_id, "after": after}).encode()
        await idem.complete(db, claim.record_id, idem.StoredResponse(200, body, {}))
    return Sent(task, task.run_id, after)


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
        max_cost_usd=principal.capped_cost(None),
    )
    task_id = idem.resource_id(claim.resource_seed, "task") if claim.resource_seed else None
    return await taskops.start_task(state.db, await state.temporal(), state.settings, new, task_id=task_id)


async def _save_sent_push(state: AppState, push: a2a_push.PushConfigInput, task: Task, principal: Principal,
                          *, created: bool) -> None:
    """Saves the (already checked) push config sent with the message. A new task whose config
    cannot be saved is cancelled: the caller is told it failed, so it must not run unwatched."""
    try:
        await a2a_push.create_push_config(state.db, state.settings, task_id=task.id, user_id=principal.user_id,
                                          cfg=push, checked=True)
    except BaseException:
        if created:
            try:
                await taskops.cancel_task(state.db, await state.temporal(), task.id, principal.user_id)
            except Exception:
                log.exception("task %s: cancelling after its push config failed", task.id)
        raise


async def save_push(state: AppState, cfg: TaskPushNotificationConfig, task: Task, principal: Principal) -> A2APushConfig:
    return await a2a_push.create_push_config(state.db, state.settings, task_id=task.id, user_id=principal.user_id,
                                             cfg=push_input(cfg))
