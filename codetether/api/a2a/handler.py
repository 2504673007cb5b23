"""The A2A request handler: a2a-sdk's :class:`RequestHandler` over CodeTether's durable tasks.

The SDK's JSON-RPC dispatcher (``codetether/api/a2a/routes.py``) parses and answers the protocol; every
method here calls the same services as REST (``codetether/tasks/service.py``, ``codetether/tasks/conversation.py``,
``codetether/tasks/eventstream.py``, ``codetether/protocols/a2a_push.py``), so an A2A task is the very same TaskWorkflow and
database row a REST client sees. Business refusals (:class:`codetether.core.errors.ServiceError`) become
A2A errors; the caller's principal comes from ``codetether/api/a2a/routes.py``'s authentication.

- ``SendMessage`` / ``SendStreamingMessage``: no task id or context → a new task; the id of a
  task waiting for input → the answer; of a running task → a message for its next turn; of a
  finished one → a follow-up run (like ``POST /v1/automation/tasks/{id}/messages``). The
  ``messageId`` is the idempotency key: the same message again returns the same task.
- Blocking sends wait (bounded) until the task is terminal or needs input; streams replay the
  task's event log as status updates and end on a terminal or input-required state.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator
from typing import Any

from a2a.server.context import ServerCallContext
from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.types.a2a_pb2 import (
    AgentCard,
    AuthenticationInfo,
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetExtendedAgentCardRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTaskPushNotificationConfigsResponse,
    ListTasksRequest,
    ListTasksResponse,
    Message,
    SendMessageRequest,
    SubscribeToTaskRequest,
    TaskPushNotificationConfig,
)
from a2a.types.a2a_pb2 import (
    Task as A2ATask,
)
from a2a.utils.errors import (
    A2AError,
    ExtendedAgentCardNotConfiguredError,
    InternalError,
    InvalidParamsError,
    InvalidRequestError,
    TaskNotCancelableError,
    TaskNotFoundError,
)
from google.protobuf.json_format import MessageToDict

from codetether.api.auth import Principal
from codetether.api.edge.errors import Problem
from codetether.api.edge.idempotency import caller_scope
from codetether.api.state import AppState
from codetether.api.edge.streamcap import stream_slots
from codetether.protocols import a2a_push
from codetether.tasks import conversation
from codetether.tasks import service as taskops
from codetether.api.edge import idempotency_store as idem
from codetether.protocols.a2a_view import (
    FINAL_STATUSES,
    STATUS_EVENTS,
    STATUS_OF,
    event_updates,
    to_a2a_task,
)
from codetether.tasks.conversation import ConversationError
from codetether.core.errors import ServiceError
from codetether.tasks.eventstream import TaskSeqWatcher, follow_events
from codetether.core.models import A2APushConfig, Task
from codetether.tasks.launch import NewTask
from codetether.agent.prompts import AGENT_TYPE_CHOICES as AGENT_TYPES
from codetether.tasks.contracts import TERMINAL_STATUSES, WAITING_STATUSES

log = logging.getLogger(__name__)

# A blocking send answers once the task is terminal or needs input, or after this long.
BLOCKING_WAIT_SECONDS = 60.0
PRINCIPAL_KEY = "codetether_principal"
HTTP_REQUEST_ID_KEY = "codetether_request_id"


def a2a_error(err: ServiceError | ConversationError) -> A2AError:
    code = err.code
    message = err.message
    data = {"code": code}
    if isinstance(err, ServiceError):
        if err.status == 404:
            return TaskNotFoundError(message, data=data)
        if code == "task_not_cancellable":
            return TaskNotCancelableError(message, data=data)
        if err.status in (400, 422):
            return InvalidParamsError(message, data=data)
        if err.status >= 500:
            return InternalError(message, data=data)
        return InvalidRequestError(message, data=data)
    if code in (conversation.WORKER_UNAVAILABLE, conversation.TEMPORAL_UNAVAILABLE):
        return InternalError(message, data=data)
    return InvalidRequestError(message, data=data)


def _message_text(msg: Message) -> str:
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


def _push_out(row: A2APushConfig) -> TaskPushNotificationConfig:
    cfg = TaskPushNotificationConfig(id=row.id, task_id=row.task_id, url=row.url, token=row.token or "")
    if row.auth_scheme:
        # Credentials are write-only: they are never returned.
        cfg.authentication.CopyFrom(AuthenticationInfo(scheme=row.auth_scheme))
    return cfg


class CodeTetherRequestHandler(RequestHandler):
    def __init__(self, state: AppState) -> None:
        self.state = state

    # --- helpers -------------------------------------------------------------------------

    @property
    def db(self):
        return self.state.db

    def _watcher(self) -> TaskSeqWatcher:
        watcher = self.state.extras.get("task_seq_watcher")
        if watcher is None:
            watcher = self.state.extras["task_seq_watcher"] = TaskSeqWatcher(self.state.db)
        return watcher

    def _principal(self, context: ServerCallContext, *scopes: str) -> Principal:
        principal: Principal | None = context.state.get(PRINCIPAL_KEY)
        if principal is None:  # the route authenticates first; this is a guard
            raise InvalidRequestError("not authenticated", data={"code": "unauthenticated"})
        missing = [s for s in scopes if s not in principal.scopes]
        if missing:
            # JSON-RPC's invalid-request error, with the stable code REST uses (the SDK maps error
            # types exactly, so this stays an InvalidRequestError rather than a subclass).
            raise InvalidRequestError(
                f"this call needs the scope(s): {', '.join(missing)}", data={"code": "insufficient_scope"}
            )
        return principal

    def _slot(self, principal: Principal):
        """A slot of the per-user cap on held requests (REST's ?wait= and SSE share it)."""
        try:
            return stream_slots(self.state).take(principal.user_id)
        except Problem as err:
            raise InvalidRequestError(err.detail or err.code, data={"code": err.code}) from None

    async def _load(self, task_id: str, principal: Principal) -> Task:
        try:
            return await taskops.load_task(self.db, task_id, principal.user_id)
        except ServiceError as err:
            raise a2a_error(err) from None

    async def _own_task(self, task_id: str, principal: Principal) -> Task | None:
        try:
            return await taskops.load_task(self.db, task_id, principal.user_id)
        except ServiceError:
            return None

    # --- sending -------------------------------------------------------------------------

    async def _deliver(self, params: SendMessageRequest, context: ServerCallContext) -> tuple[Task, int]:
        """Delivers the message; returns the task and the seq its new events come after."""
        msg = params.message
        text = _message_text(msg)
        if not text:
            raise InvalidParamsError("the message has no text", data={"code": "validation_error"})
        target_id = msg.task_id or msg.context_id
        target = await self._own_task(target_id, self._principal(context)) if target_id else None
        if msg.task_id and target is None:
            raise TaskNotFoundError(f"no task {msg.task_id!r}", data={"code": "task_not_found"})
        principal = self._principal(context, "tasks:write" if target is None else "messages:write")

        claim = None
        if msg.message_id:
            fp = idem.fingerprint("A2A", "SendMessage", json.dumps(
                [msg.task_id, msg.context_id, text, _options(params)], sort_keys=True, ensure_ascii=False
            ).encode())
            claim = await idem.claim(self.db, caller_scope(principal), f"a2a:{msg.message_id}", "A2A",
                                     "SendMessage", fp)
            if claim.outcome is idem.Outcome.REPLAY and claim.response is not None:
                stored = json.loads(claim.response.body)
                return await self._load(stored["task_id"], principal), int(stored.get("after", 0))
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
                task = await self._new_task(params, principal, text, context, claim)
                after = 0
            else:
                after = target.last_seq
                delivery = await conversation.send_message(
                    self.db, await self.state.temporal(), self.state.settings, target, text,
                    concurrency_limit=principal.concurrency_limit, request_id=context.state.get(HTTP_REQUEST_ID_KEY),
                )
                task = delivery.task
            await self._configure_push(params, task, principal)
        except (ServiceError, ConversationError) as err:
            if claim is not None and claim.record_id is not None:
                await idem.release(self.db, claim.record_id, resource_reserved=reserved)
            raise a2a_error(err) from None
        except BaseException:
            if claim is not None and claim.record_id is not None:
                await idem.release(self.db, claim.record_id, resource_reserved=reserved)
            raise
        if claim is not None and claim.record_id is not None:
            body = json.dumps({"task_id": task.id, "after": after}).encode()
            await idem.complete(self.db, claim.record_id, idem.StoredResponse(200, body, {}))
        return task, after

    async def _new_task(self, params, principal: Principal, text: str, context, claim) -> Task:
        opts = _options(params)
        for name in ("agent_type", "model", "title", "codebase_id"):
            if opts.get(name) is not None and not isinstance(opts[name], str):
                raise ServiceError(422, "validation_error", f"metadata.{name} must be a string")
        agent_type = opts.get("agent_type") or "general"
        if agent_type not in AGENT_TYPES:
            raise ServiceError(422, "validation_error", f"agent_type must be one of {', '.join(AGENT_TYPES)}")
        spec = taskops.resolve_model(self.state.catalog, opts.get("model"))
        metadata = opts.get("metadata") if isinstance(opts.get("metadata"), dict) else {}
        new = NewTask(
            owner_id=principal.user_id,
            title=str(opts.get("title") or conversation.derive_title(text))[:200],
            description=text,
            agent_type=agent_type,
            model=spec.name,
            metadata=metadata,
            codebase_id=opts.get("codebase_id"),
            concurrency_limit=principal.concurrency_limit,
            request_id=context.state.get(HTTP_REQUEST_ID_KEY),
        )
        task_id = idem.resource_id(claim.resource_seed, "task") if claim is not None and claim.resource_seed else None
        return await taskops.start_task(self.db, await self.state.temporal(), self.state.settings, new, task_id=task_id)

    async def _configure_push(self, params: SendMessageRequest, task: Task, principal: Principal) -> None:
        if not params.HasField("configuration") or not params.configuration.HasField("task_push_notification_config"):
            return
        cfg = params.configuration.task_push_notification_config
        if cfg.url:
            await self._save_push(cfg, task, principal)

    async def _save_push(self, cfg: TaskPushNotificationConfig, task: Task, principal: Principal) -> A2APushConfig:
        auth = cfg.authentication if cfg.HasField("authentication") else None
        return await a2a_push.create_push_config(
            self.db, self.state.settings, task_id=task.id, user_id=principal.user_id, url=cfg.url,
            token=cfg.token or None, auth_scheme=auth.scheme if auth else None,
            auth_credentials=auth.credentials if auth else None, config_id=cfg.id or None,
        )

    @staticmethod
    def _history_length(config_or_req) -> int | None:
        try:
            return config_or_req.history_length if config_or_req.HasField("history_length") else None
        except ValueError:
            return config_or_req.history_length or None

    async def on_message_send(self, params: SendMessageRequest, context: ServerCallContext) -> A2ATask:
        task, _after = await self._deliver(params, context)
        principal = self._principal(context)
        config = params.configuration if params.HasField("configuration") else None
        if config is None or not config.return_immediately:
            # Blocking (the A2A default): answer once the task is terminal or waits for input.
            release = self._slot(principal)
            try:
                task = await taskops.wait_for_status(self.db, task.id, principal.user_id, WAITING_STATUSES,
                                                     BLOCKING_WAIT_SECONDS)
            finally:
                release()
        history_length = self._history_length(config) if config is not None else None
        return to_a2a_task(task, history_length=history_length)

    async def _follow(self, task: Task, after: int, principal: Principal) -> AsyncGenerator[Any]:
        release = self._slot(principal)
        try:
            async for event in follow_events(self.db, self._watcher(), task.id, after):
                for update in event_updates(task.id, event.type, event.body):
                    yield update
                if STATUS_EVENTS.get(event.type) in FINAL_STATUSES:
                    return
        finally:
            release()

    async def on_message_send_stream(self, params: SendMessageRequest, context: ServerCallContext) -> AsyncGenerator[Any]:
        task, after = await self._deliver(params, context)
        yield to_a2a_task(task, history_length=0)
        async for update in self._follow(task, after, self._principal(context)):
            yield update

    async def on_subscribe_to_task(self, params: SubscribeToTaskRequest, context: ServerCallContext) -> AsyncGenerator[Any]:
        principal = self._principal(context, "tasks:read")
        task = await self._load(params.id, principal)
        yield to_a2a_task(task, history_length=0)
        if task.status in TERMINAL_STATUSES:
            return
        async for update in self._follow(task, task.last_seq, principal):
            yield update

    # --- reading and cancelling ----------------------------------------------------------

    async def on_get_task(self, params: GetTaskRequest, context: ServerCallContext) -> A2ATask | None:
        principal = self._principal(context, "tasks:read")
        task = await self._load(params.id, principal)
        return to_a2a_task(task, history_length=self._history_length(params))

    async def on_list_tasks(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        principal = self._principal(context, "tasks:read")
        page_size = params.page_size or 50
        if not 1 <= page_size <= 100:
            raise InvalidParamsError("pageSize must be between 1 and 100", data={"code": "validation_error"})
        history_length = self._history_length(params)
        if params.context_id:
            task = await self._own_task(params.context_id, principal)
            rows, next_token = ([task] if task is not None else []), None
            if params.status and rows and STATUS_OF.get(params.status) != rows[0].status:
                rows = []
        else:
            statuses = [STATUS_OF[params.status]] if params.status in STATUS_OF else None
            try:
                rows, next_token = await taskops.list_tasks(
                    self.db, principal.user_id, taskops.TaskFilter(statuses=statuses), limit=page_size,
                    cursor=params.page_token or None,
                )
            except ServiceError as err:
                raise a2a_error(err) from None
        return ListTasksResponse(
            tasks=[to_a2a_task(t, history_length=history_length, include_artifacts=params.include_artifacts)
                   for t in rows],
            next_page_token=next_token or "",
            page_size=page_size,
            total_size=len(rows),
        )

    async def on_cancel_task(self, params: CancelTaskRequest, context: ServerCallContext) -> A2ATask | None:
        principal = self._principal(context, "tasks:write")
        try:
            outcome = await taskops.cancel_task(self.db, await self.state.temporal(), params.id, principal.user_id)
        except ServiceError as err:
            raise a2a_error(err) from None
        return to_a2a_task(outcome.task, history_length=0)

    # --- push notification configs -------------------------------------------------------

    async def on_create_task_push_notification_config(
        self, params: TaskPushNotificationConfig, context: ServerCallContext
    ) -> TaskPushNotificationConfig:
        principal = self._principal(context, "tasks:write")
        task = await self._load(params.task_id, principal)
        try:
            row = await self._save_push(params, task, principal)
        except ServiceError as err:
            raise a2a_error(err) from None
        return _push_out(row)

    async def on_get_task_push_notification_config(
        self, params: GetTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> TaskPushNotificationConfig:
        principal = self._principal(context, "tasks:read")
        task = await self._load(params.task_id, principal)
        try:
            if params.id:
                return _push_out(await a2a_push.get_push_config(self.db, task.id, params.id))
            rows = await a2a_push.list_push_configs(self.db, task.id)
        except ServiceError as err:
            raise a2a_error(err) from None
        if not rows:
            raise InvalidParamsError("the task has no push notification config", data={"code": "push_config_not_found"})
        return _push_out(rows[0])

    async def on_list_task_push_notification_configs(
        self, params: ListTaskPushNotificationConfigsRequest, context: ServerCallContext
    ) -> ListTaskPushNotificationConfigsResponse:
        principal = self._principal(context, "tasks:read")
        task = await self._load(params.task_id, principal)
        rows = await a2a_push.list_push_configs(self.db, task.id)
        return ListTaskPushNotificationConfigsResponse(configs=[_push_out(r) for r in rows])

    async def on_delete_task_push_notification_config(
        self, params: DeleteTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> None:
        principal = self._principal(context, "tasks:write")
        task = await self._load(params.task_id, principal)
        await a2a_push.delete_push_config(self.db, task.id, params.id)

    async def on_get_extended_agent_card(self, params: GetExtendedAgentCardRequest, context: ServerCallContext) -> AgentCard:
        raise ExtendedAgentCardNotConfiguredError()


__all__ = ["HTTP_REQUEST_ID_KEY", "PRINCIPAL_KEY", "CodeTetherRequestHandler"]
