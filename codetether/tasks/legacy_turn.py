"""The single-turn path of :class:`codetether.tasks.workflow.TaskWorkflow`: one ``run_agent``
activity per model turn with the whole conversation, from before the tool loop existed.

Retired by ``agent-tool-loop-v1`` (AGENT_LOOP_PATCH, codetether/tasks/contracts.py): every
execution started since that patch (and every lean one, ``lean-task-v1``) runs
``codetether/agent/loop.py`` instead, so no new run takes this path. Only executions started
before the patch replay it. Delete this module, and the ``workflow.patched(AGENT_LOOP_PATCH)``
branch that calls it, once no execution started before ``agent-tool-loop-v1`` is still open
(``v0_task_*`` golden histories go with it).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from codetether.agent.contracts import MODEL_NOT_CONFIGURED, PROVIDER_CLIENT_ERROR, ChatMessage
    from codetether.agent.host import AgentHost
    from codetether.tasks.activities import TaskActivities
    from codetether.tasks.contracts import (
        ErrorCode,
        RunAgentInput,
        RunAgentResult,
        TaskCarryOver,
        TaskChanges,
        TaskInput,
        TaskResult,
        TaskStatus,
    )
    from codetether.tasks.run_state import TaskRunState

AGENT_TURN_TIMEOUT = timedelta(minutes=30)
# Short, so a dead worker's turn moves to another worker quickly; the worker sends heartbeats
# at least every 0.5 s (see codetether/worker.py), which is also how cancellation reaches the agent fast.
AGENT_HEARTBEAT_TIMEOUT = timedelta(seconds=10)
# A long conversation starts a fresh history after this many turns.
TURNS_BEFORE_CONTINUE_AS_NEW = 40

AGENT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    non_retryable_error_types=[PROVIDER_CLIENT_ERROR, MODEL_NOT_CONFIGURED],
)


class SingleTurnHost(AgentHost, Protocol):
    """The tool loop's host, plus the two steps this path takes itself when an answer is in."""

    async def record(self, event_type: str | None, changes: TaskChanges) -> None: ...

    async def acquire_slot(self) -> None: ...


async def run_single_turns(inp: TaskInput, state: TaskRunState, host: SingleTurnHost) -> TaskResult:
    """Model turns until the model answers; ``ask_user`` parks the task between two turns."""
    while True:
        if state.pending:
            state.messages.extend(ChatMessage(role="user", content=m) for m in state.take_pending())
        try:
            turn = await _agent_turn(inp, state)
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            return await _fail_from_activity(inp, state, host, err)
        state.messages.extend(turn.new_messages)
        state.turns += 1

        if turn.kind == "question":
            reply = await host.ask(turn.question or "")
            if reply is None:
                return await _fail(inp, state, host, ErrorCode.INPUT_TIMEOUT, "no reply arrived before the input timeout")
            state.messages.append(ChatMessage(role="tool", content=reply, tool_call_id=turn.tool_call_id))
            if inp.concurrency_limit is not None:
                # The answer is in, but the task may wait for a running slot again: show it
                # as queued rather than still asking the answered question.
                state.status = TaskStatus.QUEUED.value
                await host.record(None, TaskChanges(status=state.status, clear_required_action=True))
            if workflow.info().is_continue_as_new_suggested() or state.turns >= TURNS_BEFORE_CONTINUE_AS_NEW:
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(_carry_over(inp, state))
            await host.acquire_slot()
            state.status = TaskStatus.RUNNING.value
            await host.record(None, TaskChanges(status=state.status, clear_required_action=True))
            continue
        if state.pending:
            continue
        # end_run sets the status before it awaits: from here on a message starts a follow-up run.
        await host.end_run(
            "task.completed",
            TaskChanges(
                status=TaskStatus.COMPLETED.value,
                result=turn.text,
                retry_count=state.retry_count,
                clear_required_action=True,
                clear_error=True,
            ),
        )
        return TaskResult(task_id=inp.task_id, run_id=inp.run_id, status=TaskStatus.COMPLETED.value, result=turn.text)


async def _agent_turn(inp: TaskInput, state: TaskRunState) -> RunAgentResult:
    turn: RunAgentResult = await workflow.execute_activity_method(
        TaskActivities.run_agent,
        RunAgentInput(
            task_id=inp.task_id,
            run_id=inp.run_id,
            owner_id=inp.owner_id,
            model=inp.model,
            agent_type=inp.agent_type,
            messages=state.messages,
        ),
        start_to_close_timeout=AGENT_TURN_TIMEOUT,
        heartbeat_timeout=AGENT_HEARTBEAT_TIMEOUT,
        retry_policy=AGENT_RETRY,
        cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    )
    state.count_attempts(turn.attempt)
    return turn


async def _fail_from_activity(inp: TaskInput, state: TaskRunState, host: SingleTurnHost, err: ActivityError) -> TaskResult:
    cause = err.cause
    code, message = ErrorCode.AGENT_ERROR, str(cause or err)
    if isinstance(cause, ApplicationError):
        message = cause.message
        details = cause.details[0] if cause.details else {}
        if isinstance(details, dict):
            code = details.get("code", code)
            state.count_attempts(int(details.get("attempt", 1)))
        if cause.type == MODEL_NOT_CONFIGURED:
            code = ErrorCode.MODEL_UNAVAILABLE
    return await _fail(inp, state, host, code, message)


async def _fail(inp: TaskInput, state: TaskRunState, host: SingleTurnHost, code: str, message: str) -> TaskResult:
    await host.end_run(
        "task.failed",
        TaskChanges(
            status=TaskStatus.FAILED.value,
            error_code=code,
            error_message=message,
            retry_count=state.retry_count,
            clear_required_action=True,
        ),
    )
    return TaskResult(
        task_id=inp.task_id, run_id=inp.run_id, status=TaskStatus.FAILED.value, error_code=code, error_message=message
    )


def _carry_over(inp: TaskInput, state: TaskRunState) -> TaskInput:
    return TaskInput(
        task_id=inp.task_id,
        run_id=inp.run_id,
        owner_id=inp.owner_id,
        title=inp.title,
        description=inp.description,
        agent_type=inp.agent_type,
        model=inp.model,
        priority=inp.priority,
        concurrency_limit=inp.concurrency_limit,
        input_timeout_seconds=inp.input_timeout_seconds,
        request_id=inp.request_id,
        carried=TaskCarryOver(
            messages=state.messages,
            pending_messages=state.pending,
            retry_count=state.retry_count,
            turns=0,
            started=True,
        ),
    )
