"""Human-in-the-loop replies and conversations with a task.

The logic behind ``POST /v1/automation/tasks/{id}/input``, ``POST …/tasks/{id}/messages`` and
``POST /v1/automation/messages`` (see ``codetether/api/rest/routes/conversation.py``):

- a reply to the pending question goes to the workflow as the ``provide_input`` update, whose
  validator is the authority on whether the question is still pending;
- a message is the ``send_message`` update while the task lives (the workflow decides whether it
  answers the question or waits for the agent's next turn);
- a message to a finished task starts a follow-up run: a new ``run_id`` on the same ``task_id``
  (same workflow id), carrying the conversation stored in ``tasks.conversation``.

Refusals are :class:`ConversationError` with a stable code the API maps to a problem response.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any
from dataclasses import dataclass, replace

from sqlalchemy import update
from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from codetether.core.config import Settings
from codetether.core.db import Database, poll_until
from codetether.core.errors import ServiceError
from codetether.core.ids import new_id, utcnow
from codetether.core.models import Task
from codetether.tasks.answers import ANSWER_REFUSALS, refusal
from codetether.tasks.launch import start_task_workflow, task_input
from codetether.tasks.contracts import (
    PROVIDE_INPUT_UPDATE,
    SEND_MESSAGE_UPDATE,
    TERMINAL_STATUSES,
    ProvideInputInput,
    ProvideInputResult,
    SendMessageInput,
    SendMessageResult,
    TaskInput,
    TaskStatus,
    VIA_API,
)

log = logging.getLogger(__name__)

# Stable codes (the API turns them into problem responses).
TASK_NOT_WAITING = "task_not_waiting"
STALE_REQUIRED_ACTION = "stale_required_action"
WORKER_UNAVAILABLE = "worker_unavailable"
TEMPORAL_UNAVAILABLE = "temporal_unavailable"
TASK_BUSY = "task_busy"
TASK_FINISHED = "task_finished"

# How delivered messages are described to the caller.
DELIVERED_REPLY = "reply"
DELIVERED_QUEUED = "queued"
DELIVERED_FOLLOW_UP = "follow_up"
DELIVERED_NEW_TASK = "new_task"

# An update needs a worker to run the validator; without one, give up and say so.
UPDATE_TIMEOUT = 30.0
# How long a reply waits for the database to show the task moving on, before answering anyway.
RESUME_WAIT = 5.0
# A finished run may take a moment to close after it recorded its terminal event.
CLOSE_WAIT = 15.0
# How long a message waits for the database to catch up with a run that has just ended.
TERMINAL_WAIT = 10.0
POLL_INTERVAL = 0.05
TITLE_LIMIT = 80


# A refusal is a conflict with the task's state, unless Temporal or a worker could not be reached.
_UNAVAILABLE = frozenset({WORKER_UNAVAILABLE, TEMPORAL_UNAVAILABLE})


class ConversationError(ServiceError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(503 if code in _UNAVAILABLE else 409, code, message)


@dataclass
class Delivery:
    task: Task
    delivered_as: str


def derive_title(message: str, limit: int = TITLE_LIMIT) -> str:
    """A task title from a message: its first non-blank line, cut at a word near ``limit``."""
    line = next((ln.strip() for ln in message.splitlines() if ln.strip()), "")
    line = re.sub(r"\s+", " ", line) or "Message"
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


async def reload(db: Database, task_id: str) -> Task:
    async with db.session() as s:
        task = await s.get(Task, task_id)
    if task is None:
        raise ConversationError(TASK_NOT_WAITING, f"task {task_id} no longer exists")
    return task


async def wait_until(db: Database, task_id: str, done: Callable[[Task], bool], timeout: float) -> Task:
    """Re-reads the task row until ``done(task)`` or ``timeout``; returns the last row read."""
    return await poll_until(lambda: reload(db, task_id), done, timeout, POLL_INTERVAL)


def _pending_action_id(task: Task) -> str | None:
    return (task.required_action or {}).get("id")


def _moved_on_from(action_id: str | None) -> Callable[[Task], bool]:
    return lambda t: t.status != TaskStatus.NEEDS_INPUT.value or _pending_action_id(t) != action_id


async def _execute_update(client: Client, task_id: str, update: str, arg, result_type: type):
    """Runs the task workflow's update ``update`` (by name: services do not import workflows)."""
    handle = client.get_workflow_handle(task_id)
    try:
        return await asyncio.wait_for(handle.execute_update(update, arg, result_type=result_type), UPDATE_TIMEOUT)
    except TimeoutError:
        raise ConversationError(
            WORKER_UNAVAILABLE, "no worker took the message in time; it may still be delivered, check the task"
        ) from None
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        raise ConversationError(
            WORKER_UNAVAILABLE, "no worker took the message in time; it may still be delivered, check the task"
        ) from None


def _rejection(err: WorkflowUpdateFailedError) -> str | None:
    cause = err.cause
    return cause.type if isinstance(cause, ApplicationError) else None


async def provide_input(
    db: Database,
    client: Client,
    task: Task,
    message: str | None,
    required_action_id: str | None,
    *,
    via: str = VIA_API,
    sender: str | None = None,
    choice: str | None = None,
    answer: Any = None,
    decision: str | None = None,
) -> Task:
    """Answers the pending question of ``task``; returns the row once it shows the task resumed.

    ``choice``, ``answer`` and ``decision`` are checked against the action (CONTRACT §12,
    :mod:`codetether.tasks.answers`): a refusal is a 422 with a stable code and the task keeps
    waiting. ``via`` (api, link, email) and ``sender`` end up in the ``task.message`` event."""
    if task.status != TaskStatus.NEEDS_INPUT.value:
        raise ConversationError(TASK_NOT_WAITING, f"the task is {task.status}, not waiting for input")
    pending = _pending_action_id(task)
    if required_action_id is not None and required_action_id != pending:
        raise ConversationError(
            STALE_REQUIRED_ACTION, f"required_action_id {required_action_id!r} is not the pending action"
        )
    problem = refusal(task.required_action, message=message, choice=choice, answer=answer, decision=decision)
    if problem is not None:
        raise ServiceError(422, problem.code, problem.message, field=problem.field)
    # Without an id the caller answers the question it saw: the one the database shows.
    try:
        await _execute_update(
            client,
            task.id,
            PROVIDE_INPUT_UPDATE,
            ProvideInputInput(
                message=message or "", required_action_id=required_action_id or pending, via=via, sender=sender,
                choice=choice, answer=answer, decision=decision,
            ),
            ProvideInputResult,
        )
    except WorkflowUpdateFailedError as err:
        kind = _rejection(err)
        if kind == "stale_action":
            raise ConversationError(STALE_REQUIRED_ACTION, "the question was already answered or replaced") from None
        if kind == "not_waiting":
            raise ConversationError(TASK_NOT_WAITING, "the task is no longer waiting for input") from None
        if kind in ANSWER_REFUSALS:
            raise ServiceError(422, kind, str(err.cause.message if err.cause else err)) from None
        raise
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ConversationError(TASK_NOT_WAITING, "the task is no longer running") from None
        raise ConversationError(TEMPORAL_UNAVAILABLE, f"the reply could not be delivered: {err.message}") from None
    return await wait_until(db, task.id, _moved_on_from(pending), RESUME_WAIT)


async def send_message(
    db: Database,
    client: Client,
    settings: Settings,
    task: Task,
    message: str,
    *,
    concurrency_limit: int | None,
    request_id: str | None = None,
    via: str = VIA_API,
    sender: str | None = None,
    allow_follow_up: bool = True,
) -> Delivery:
    """Delivers ``message`` to the task's conversation: a reply, a queued message or a follow-up run.

    ``allow_follow_up=False``: the message is for the run going on, never the start of another
    (A2A's message to one task); a run that has ended by then is :data:`TASK_FINISHED`."""
    for _ in range(4):
        if task.status in TERMINAL_STATUSES:
            if not allow_follow_up:
                raise ConversationError(TASK_FINISHED, f"the task is {task.status}")
            started = await _start_follow_up(
                db, client, settings, task, message, concurrency_limit, request_id, via=via, sender=sender
            )
            if started is not None:
                return Delivery(started, DELIVERED_FOLLOW_UP)
            # Another message started the follow-up first; this one joins that run.
            task = await reload(db, task.id)
            continue
        try:
            result: SendMessageResult = await _execute_update(
                client,
                task.id,
                SEND_MESSAGE_UPDATE,
                SendMessageInput(message=message, via=via, sender=sender),
                SendMessageResult,
            )
        except WorkflowUpdateFailedError as err:
            if _rejection(err) != "terminal":
                raise
            # The run has just ended; once its end is recorded the message starts a follow-up.
            task = await _wait_for_end(db, task)
            continue
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise ConversationError(TEMPORAL_UNAVAILABLE, f"the message could not be delivered: {err.message}") from None
            task = await _wait_for_end(db, task)
            continue
        if result.delivered_as == DELIVERED_REPLY:
            task = await wait_until(db, task.id, _moved_on_from(_pending_action_id(task)), RESUME_WAIT)
            return Delivery(task, DELIVERED_REPLY)
        log.info("task %s: message via %s queued for the agent's next turn", task.id, via)
        return Delivery(await reload(db, task.id), DELIVERED_QUEUED)
    raise ConversationError(TASK_BUSY, "the task changed state repeatedly while the message was delivered; retry")


async def _wait_for_end(db: Database, task: Task) -> Task:
    run_id = task.run_id
    ended = await wait_until(
        db, task.id, lambda t: t.status in TERMINAL_STATUSES or t.run_id != run_id, TERMINAL_WAIT
    )
    if ended.status not in TERMINAL_STATUSES and ended.run_id == run_id:
        raise ConversationError(TASK_BUSY, f"the task is {ended.status} but its run is not accepting messages")
    return ended


async def _start_follow_up(
    db: Database,
    client: Client,
    settings: Settings,
    task: Task,
    message: str,
    concurrency_limit: int | None,
    request_id: str | None,
    *,
    via: str = VIA_API,
    sender: str | None = None,
) -> Task | None:
    """Starts a new run of a finished task; None when another message claimed the follow-up first."""
    new_run = new_id("run")
    now = utcnow()
    async with db.write_session() as s:
        # Claiming the row (old run_id, terminal status) makes exactly one follow-up win a race.
        res = await s.execute(
            update(Task)
            .where(Task.id == task.id, Task.run_id == task.run_id, Task.status.in_(TERMINAL_STATUSES))
            .values(
                run_id=new_run,
                status=TaskStatus.QUEUED.value,
                run_count=Task.run_count + 1,
                started_at=None,
                completed_at=None,
                result=None,
                result_summary=None,
                result_json=None,
                error_code=None,
                error_message=None,
                progress=None,
                required_action=None,
                pending_message=message,
                updated_at=now,
            )
        )
        await s.commit()
    if res.rowcount != 1:
        return None
    # ``task`` is the row as it was before the claim: same conversation, the new run's id.
    inp = replace(
        task_input(task, concurrency_limit=concurrency_limit, request_id=request_id, follow_up=message),
        run_id=new_run,
        follow_up_via=via,
        follow_up_sender=sender,
    )
    try:
        await _start_when_closed(client, settings, inp)
    except Exception as err:  # noqa: BLE001 - any failure to start must give the row back
        async with db.write_session() as s:
            await s.execute(
                update(Task)
                .where(Task.id == task.id, Task.run_id == new_run)
                .values(
                    run_id=task.run_id,
                    status=task.status,
                    run_count=task.run_count,
                    started_at=task.started_at,
                    completed_at=task.completed_at,
                    result=task.result,
                    result_summary=task.result_summary,
                    result_json=task.result_json,
                    error_code=task.error_code,
                    error_message=task.error_message,
                    updated_at=utcnow(),
                )
            )
            await s.commit()
        raise ConversationError(TEMPORAL_UNAVAILABLE, f"the follow-up run could not be started: {err}") from None
    log.info("task %s: follow-up run %s started", task.id, new_run)
    return await reload(db, task.id)


async def _start_when_closed(client: Client, settings: Settings, inp: TaskInput) -> None:
    """Starts the follow-up execution, waiting for the previous one to close if it is still closing.

    The previous run records its terminal event and then returns; in between, the workflow id is
    still taken by a running execution.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CLOSE_WAIT
    while True:
        try:
            await start_task_workflow(client, settings, inp, follow_up=True)
            return
        except WorkflowAlreadyStartedError:
            if loop.time() >= deadline:
                raise
        try:
            await asyncio.wait_for(client.get_workflow_handle(inp.task_id).result(follow_runs=False), 1.0)
        except Exception:  # noqa: BLE001 - only waiting for it to close, however it ends
            await asyncio.sleep(POLL_INTERVAL)
