"""The A2A request handler: a2a-sdk's :class:`RequestHandler` over CodeTether's durable tasks.

The SDK's JSON-RPC dispatcher (``codetether/api/a2a/routes.py``) parses and answers the protocol; every
method here calls the same services as REST (``codetether/tasks/service.py``, ``codetether/tasks/conversation.py``,
``codetether/tasks/eventstream.py``, ``codetether/protocols/a2a_push.py``), so an A2A task is the very same TaskWorkflow and
database row a REST client sees. Business refusals (:class:`codetether.core.errors.ServiceError`) become
A2A errors (``errors.py``); the caller's principal comes from ``codetether/api/a2a/routes.py``'s
authentication (``access.py``).

- ``SendMessage`` / ``SendStreamingMessage``: the message is delivered by ``sending.py`` (a new
  task, an answer, a message for the next turn, or a new A2A task in an existing context: a
  follow-up run; ``messageId`` is the idempotency key).
- An A2A task is one run of a CodeTether task and its context the task
  (``codetether/protocols/a2a_runs.py``); every method that takes a task id resolves it to both.
- Blocking sends wait (bounded) until the task is terminal or needs input; streams replay the
  run's event log as status updates and end on a terminal or input-required state. A finished
  task cannot be subscribed to (UnsupportedOperationError).
- ``ListTasks`` is ``listing.py``.
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
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)

from codetether.api.a2a.access import (
    HTTP_REQUEST_ID_KEY,
    PRINCIPAL_KEY,
    RAW_PARAMS_KEY,
    principal_of,
)
from codetether.api.a2a.errors import a2a_error, guarded
from codetether.api.a2a.listing import list_a2a_tasks
from codetether.api.a2a.sending import deliver, save_push
from codetether.api.auth import Principal
from codetether.api.edge.streamcap import stream_slots
from codetether.api.state import AppState
from codetether.core.errors import ServiceError
from codetether.core.models import A2APushConfig, Task
from codetether.protocols import a2a_push, a2a_runs
from codetether.protocols.a2a_runs import RunState
from codetether.protocols.a2a_view import (
    FINAL_STATUSES,
    STATUS_EVENTS,
    event_updates,
    to_a2a_task,
)
from codetether.tasks import service as taskops
from codetether.tasks.contracts import WAITING_STATUSES
from codetether.tasks.eventstream import follow_events

log = logging.getLogger(__name__)

# A blocking send answers once the task is terminal or needs input, or after this long.
BLOCKING_WAIT_SECONDS = 60.0


def _push_out(row: A2APushConfig, task_id: str) -> TaskPushNotificationConfig:
    """``task_id``: the A2A task id the caller named (a config belongs to the whole conversation)."""
    cfg = TaskPushNotificationConfig(id=row.id, task_id=task_id, url=row.url, token=row.token or "")
    if row.auth_scheme:
        # Credentials are write-only: they are never returned.
        cfg.authentication.CopyFrom(AuthenticationInfo(scheme=row.auth_scheme))
    return cfg


def history_length_of(config_or_req) -> int | None:
    """The request's ``historyLength`` (None when not given); a negative one is refused."""
    try:
        value = config_or_req.history_length if config_or_req.HasField("history_length") else None
    except ValueError:
        value = config_or_req.history_length or None
    if value is not None and value < 0:
        raise InvalidParamsError("historyLength must be 0 or more", data={"code": "validation_error"})
    return value


class CodeTetherRequestHandler(RequestHandler):
    def __init__(self, state: AppState) -> None:
        self.state = state

    # --- helpers -------------------------------------------------------------------------

    @property
    def db(self):
        return self.state.db

    def _slot(self, principal: Principal):
        """A slot of the per-user cap on held requests (REST's ?wait= and SSE share it)."""
        try:
            return stream_slots(self.state).take(principal.user_id)
        except ServiceError as err:
            raise a2a_error(err) from None

    async def _run(self, a2a_task_id: str, principal: Principal) -> tuple[Task, str]:
        """The caller's task and run an A2A task id names (another user's is not found)."""
        found = await a2a_runs.find_run(self.db, a2a_task_id, principal.user_id) if a2a_task_id else None
        if found is None:
            raise TaskNotFoundError(f"no task {a2a_task_id!r}", data={"code": "task_not_found"})
        return found

    async def _view(self, a2a_task_id: str, principal: Principal) -> RunState:
        task, run_id = await self._run(a2a_task_id, principal)
        return await a2a_runs.state_of(self.db, task, run_id)

    # --- sending -------------------------------------------------------------------------

    @guarded
    async def on_message_send(self, params: SendMessageRequest, context: ServerCallContext) -> A2ATask:
        config = params.configuration if params.HasField("configuration") else None
        history_length = history_length_of(config) if config is not None else None
        sent = await deliver(self.state, params, context)
        principal = principal_of(context)
        task = sent.task
        if config is None or not config.return_immediately:
            # Blocking (the A2A default): answer once the task is terminal or waits for input.
            release = self._slot(principal)
            try:
                task = await taskops.wait_for_status(self.db, task.id, principal.user_id, WAITING_STATUSES,
                                                     BLOCKING_WAIT_SECONDS)
            finally:
                release()
        return to_a2a_task(await a2a_runs.state_of(self.db, task, sent.run_id), history_length=history_length)

    async def _follow(self, run: RunState, after: int, principal: Principal) -> AsyncGenerator[Any]:
        release = self._slot(principal)
        try:
            async for event in follow_events(self.db, self.state.task_watcher, run.context_id, after):
                if event.run_id != run.run_id:
                    continue
                for update in event_updates(run.a2a_id, run.context_id, event.type, event.body):
                    yield update
                if STATUS_EVENTS.get(event.type) in FINAL_STATUSES:
                    return
        finally:
            release()

    @guarded
    async def on_message_send_stream(self, params: SendMessageRequest, context: ServerCallContext) -> AsyncGenerator[Any]:
        sent = await deliver(self.state, params, context)
        run = await a2a_runs.state_of(self.db, sent.task, sent.run_id)
        yield to_a2a_task(run, history_length=0)
        async for update in self._follow(run, sent.after, principal_of(context)):
            yield update

    @guarded
    async def on_subscribe_to_task(self, params: SubscribeToTaskRequest, context: ServerCallContext) -> AsyncGenerator[Any]:
        principal = principal_of(context, "tasks:read")
        task, run_id = await self._run(params.id, principal)
        run = await a2a_runs.state_of(self.db, task, run_id)
        if run.terminal:
            raise UnsupportedOperationError(
                f"task {params.id!r} is {run.status}: there is nothing to subscribe to; GetTask returns it",
                data={"code": "task_terminal"},
            )
        yield to_a2a_task(run, history_length=0)
        async for update in self._follow(run, task.last_seq, principal):
            yield update

    # --- reading and cancelling ----------------------------------------------------------

    @guarded
    async def on_get_task(self, params: GetTaskRequest, context: ServerCallContext) -> A2ATask | None:
        principal = principal_of(context, "tasks:read")
        history_length = history_length_of(params)
        return to_a2a_task(await self._view(params.id, principal), history_length=history_length)

    @guarded
    async def on_list_tasks(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        principal = principal_of(context, "tasks:read")
        return await list_a2a_tasks(self.db, params, principal, history_length_of(params),
                                    raw_status=(context.state.get(RAW_PARAMS_KEY) or {}).get("status"))

    @guarded
    async def on_cancel_task(self, params: CancelTaskRequest, context: ServerCallContext) -> A2ATask | None:
        principal = principal_of(context, "tasks:write")
        task, run_id = await self._run(params.id, principal)
        if run_id != task.run_id:
            raise TaskNotCancelableError(f"task {params.id!r} has ended", data={"code": "task_not_cancellable"})
        try:
            outcome = await taskops.cancel_task(self.db, await self.state.temporal(), task.id, principal.user_id)
        except ServiceError as err:
            raise a2a_error(err) from None
        return to_a2a_task(await a2a_runs.state_of(self.db, outcome.task, run_id), history_length=0)

    # --- push notification configs -------------------------------------------------------

    @guarded
    async def on_create_task_push_notification_config(
        self, params: TaskPushNotificationConfig, context: ServerCallContext
    ) -> TaskPushNotificationConfig:
        principal = principal_of(context, "tasks:write")
        task, _run_id = await self._run(params.task_id, principal)
        try:
            row = await save_push(self.state, params, task, principal)
        except ServiceError as err:
            raise a2a_error(err) from None
        return _push_out(row, params.task_id)

    @guarded
    async def on_get_task_push_notification_config(
        self, params: GetTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> TaskPushNotificationConfig:
        principal = principal_of(context, "tasks:read")
        task, _run_id = await self._run(params.task_id, principal)
        try:
            if params.id:
                return _push_out(await a2a_push.get_push_config(self.db, task.id, params.id), params.task_id)
            rows = await a2a_push.list_push_configs(self.db, task.id)
        except ServiceError as err:
            raise a2a_error(err) from None
        if not rows:
            raise InvalidParamsError("the task has no push notification config", data={"code": "push_config_not_found"})
        return _push_out(rows[0], params.task_id)

    @guarded
    async def on_list_task_push_notification_configs(
        self, params: ListTaskPushNotificationConfigsRequest, context: ServerCallContext
    ) -> ListTaskPushNotificationConfigsResponse:
        principal = principal_of(context, "tasks:read")
        task, _run_id = await self._run(params.task_id, principal)
        rows = await a2a_push.list_push_configs(self.db, task.id)
        return ListTaskPushNotificationConfigsResponse(configs=[_push_out(r, params.task_id) for r in rows])

    @guarded
    async def on_delete_task_push_notification_config(
        self, params: DeleteTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> None:
        principal = principal_of(context, "tasks:write")
        task, _run_id = await self._run(params.task_id, principal)
        await a2a_push.delete_push_config(self.db, task.id, params.id)

    @guarded
    async def on_get_extended_agent_card(self, params: GetExtendedAgentCardRequest, context: ServerCallContext) -> AgentCard:
        raise ExtendedAgentCardNotConfiguredError()


__all__ = ["HTTP_REQUEST_ID_KEY", "PRINCIPAL_KEY", "RAW_PARAMS_KEY", "CodeTetherRequestHandler"]
