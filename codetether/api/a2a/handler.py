"""The A2A request handler: a2a-sdk's :class:`RequestHandler` over CodeTether's durable tasks.

The SDK's JSON-RPC dispatcher (``codetether/api/a2a/routes.py``) parses and answers the protocol; every
method here calls the same services as REST (``codetether/tasks/service.py``, ``codetether/tasks/conversation.py``,
``codetether/tasks/eventstream.py``, ``codetether/protocols/a2a_push.py``), so an A2A task is the very same TaskWorkflow and
database row a REST client sees. Business refusals (:class:`codetether.core.errors.ServiceError`) become
A2A errors (``errors.py``); the caller's principal comes from ``codetether/api/a2a/routes.py``'s
authentication (``access.py``).

- ``SendMessage`` / ``SendStreamingMessage``: the message is delivered by ``sending.py`` (a new
  task, an answer, a message for the next turn or a follow-up run; ``messageId`` is the
  idempotency key).
- Blocking sends wait (bounded) until the task is terminal or needs input; streams replay the
  task's event log as status updates and end on a terminal or input-required state.
"""

from __future__ import annotations

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
    SendMessageRequest,
    SubscribeToTaskRequest,
    TaskPushNotificationConfig,
)
from a2a.types.a2a_pb2 import (
    Task as A2ATask,
)
from a2a.utils.errors import (
    ExtendedAgentCardNotConfiguredError,
    InvalidParamsError,
)

from codetether.api.a2a.access import HTTP_REQUEST_ID_KEY, PRINCIPAL_KEY, find_task, load_task, principal_of
from codetether.api.a2a.errors import a2a_error, guarded
from codetether.api.a2a.sending import deliver, save_push
from codetether.api.auth import Principal
from codetether.api.edge.streamcap import stream_slots
from codetether.api.state import AppState
from codetether.core.errors import ServiceError
from codetether.core.models import A2APushConfig, Task
from codetether.protocols import a2a_push
from codetether.protocols.a2a_view import (
    FINAL_STATUSES,
    STATUS_EVENTS,
    STATUS_OF,
    event_updates,
    to_a2a_task,
)
from codetether.tasks import service as taskops
from codetether.tasks.contracts import TERMINAL_STATUSES, WAITING_STATUSES
from codetether.tasks.eventstream import TaskSeqWatcher, follow_events

log = logging.getLogger(__name__)

# A blocking send answers once the task is terminal or needs input, or after this long.
BLOCKING_WAIT_SECONDS = 60.0


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

    def _slot(self, principal: Principal):
        """A slot of the per-user cap on held requests (REST's ?wait= and SSE share it)."""
        try:
            return stream_slots(self.state).take(principal.user_id)
        except ServiceError as err:
            raise a2a_error(err) from None

    # --- sending -------------------------------------------------------------------------

    @staticmethod
    def _history_length(config_or_req) -> int | None:
        try:
            return config_or_req.history_length if config_or_req.HasField("history_length") else None
        except ValueError:
            return config_or_req.history_length or None

    @guarded
    async def on_message_send(self, params: SendMessageRequest, context: ServerCallContext) -> A2ATask:
        task, _after = await deliver(self.state, params, context)
        principal = principal_of(context)
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

    @guarded
    async def on_message_send_stream(self, params: SendMessageRequest, context: ServerCallContext) -> AsyncGenerator[Any]:
        task, after = await deliver(self.state, params, context)
        yield to_a2a_task(task, history_length=0)
        async for update in self._follow(task, after, principal_of(context)):
            yield update

    @guarded
    async def on_subscribe_to_task(self, params: SubscribeToTaskRequest, context: ServerCallContext) -> AsyncGenerator[Any]:
        principal = principal_of(context, "tasks:read")
        task = await load_task(self.db, params.id, principal)
        yield to_a2a_task(task, history_length=0)
        if task.status in TERMINAL_STATUSES:
            return
        async for update in self._follow(task, task.last_seq, principal):
            yield update

    # --- reading and cancelling ----------------------------------------------------------

    @guarded
    async def on_get_task(self, params: GetTaskRequest, context: ServerCallContext) -> A2ATask | None:
        principal = principal_of(context, "tasks:read")
        task = await load_task(self.db, params.id, principal)
        return to_a2a_task(task, history_length=self._history_length(params))

    @guarded
    async def on_list_tasks(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        principal = principal_of(context, "tasks:read")
        page_size = params.page_size or 50
        if not 1 <= page_size <= 100:
            raise InvalidParamsError("pageSize must be between 1 and 100", data={"code": "validation_error"})
        history_length = self._history_length(params)
        if params.context_id:
            task = await find_task(self.db, params.context_id, principal)
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

    @guarded
    async def on_cancel_task(self, params: CancelTaskRequest, context: ServerCallContext) -> A2ATask | None:
        principal = principal_of(context, "tasks:write")
        try:
            outcome = await taskops.cancel_task(self.db, await self.state.temporal(), params.id, principal.user_id)
        except ServiceError as err:
            raise a2a_error(err) from None
        return to_a2a_task(outcome.task, history_length=0)

    # --- push notification configs -------------------------------------------------------

    @guarded
    async def on_create_task_push_notification_config(
        self, params: TaskPushNotificationConfig, context: ServerCallContext
    ) -> TaskPushNotificationConfig:
        principal = principal_of(context, "tasks:write")
        task = await load_task(self.db, params.task_id, principal)
        try:
            row = await save_push(self.state, params, task, principal)
        except ServiceError as err:
            raise a2a_error(err) from None
        return _push_out(row)

    @guarded
    async def on_get_task_push_notification_config(
        self, params: GetTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> TaskPushNotificationConfig:
        principal = principal_of(context, "tasks:read")
        task = await load_task(self.db, params.task_id, principal)
        try:
            if params.id:
                return _push_out(await a2a_push.get_push_config(self.db, task.id, params.id))
            rows = await a2a_push.list_push_configs(self.db, task.id)
        except ServiceError as err:
            raise a2a_error(err) from None
        if not rows:
            raise InvalidParamsError("the task has no push notification config", data={"code": "push_config_not_found"})
        return _push_out(rows[0])

    @guarded
    async def on_list_task_push_notification_configs(
        self, params: ListTaskPushNotificationConfigsRequest, context: ServerCallContext
    ) -> ListTaskPushNotificationConfigsResponse:
        principal = principal_of(context, "tasks:read")
        task = await load_task(self.db, params.task_id, principal)
        rows = await a2a_push.list_push_configs(self.db, task.id)
        return ListTaskPushNotificationConfigsResponse(configs=[_push_out(r) for r in rows])

    @guarded
    async def on_delete_task_push_notification_config(
        self, params: DeleteTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> None:
        principal = principal_of(context, "tasks:write")
        task = await load_task(self.db, params.task_id, principal)
        await a2a_push.delete_push_config(self.db, task.id, params.id)

    @guarded
    async def on_get_extended_agent_card(self, params: GetExtendedAgentCardRequest, context: ServerCallContext) -> AgentCard:
        raise ExtendedAgentCardNotConfiguredError()


__all__ = ["HTTP_REQUEST_ID_KEY", "PRINCIPAL_KEY", "CodeTetherRequestHandler"]
