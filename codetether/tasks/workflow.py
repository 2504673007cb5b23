"""TaskWorkflow: one durable workflow per task (workflow id = task_id).

Driven by ``POST /v1/automation/tasks`` (start), ``DELETE …/tasks/{id}`` (cancel),
``POST …/input`` and ``…/messages`` (updates). Each agent turn is an activity; when the model
calls ``ask_user`` the activity returns and the workflow parks in ``needs_input`` holding no worker
slot. Every transition is written to the database by ``record_event`` so the API answers reads
without a worker. A follow-up message to a finished task starts a new execution with the same
workflow id and the conversation so far.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from codetether.tasks.activities import TaskActivities
    from codetether.core.ids import iso, ulid
    from codetether.agent.loop import AgentLoop
    from codetether.agent.prompts import initial_messages
    from codetether.agent.contracts import MODEL_NOT_CONFIGURED, PROVIDER_CLIENT_ERROR, ChatMessage
    from codetether.concurrency.contracts import (
        GRANT_SLOT_SIGNAL,
        RELEASE_SLOT_SIGNAL,
        SlotGrant,
        SlotRelease,
        SlotRequestInput,
        concurrency_workflow_id,
    )
    from codetether.tasks.contracts import (
        MESSAGE_EVENT,
        AGENT_LOOP_PATCH,
        LEAN_TASK_PATCH,
        PROVIDE_INPUT_UPDATE,
        SEND_MESSAGE_UPDATE,
        TASK_WORKFLOW,
        VIA_API,
        ErrorCode,
        InputTimeout,
        ProvideInputInput,
        ProvideInputResult,
        RecordEventInput,
        RecordEventsInput,
        RequiredAction,
        RunAgentInput,
        RunAgentResult,
        SendMessageInput,
        SendMessageResult,
        TaskCarryOver,
        TaskChanges,
        TaskInput,
        TaskResult,
        TaskSnapshot,
        TaskStatus,
        SA_STATUS,
    )

# Timeouts named by role.
RECORD_TIMEOUT = timedelta(seconds=30)
AGENT_TURN_TIMEOUT = timedelta(minutes=30)
# Short, so a dead worker's turn moves to another worker quickly; the worker sends heartbeats
# at least every 0.5 s (see codetether/worker.py), which is also how cancellation reaches the agent fast.
AGENT_HEARTBEAT_TIMEOUT = timedelta(seconds=10)
# A long conversation starts a fresh history after this many turns.
TURNS_BEFORE_CONTINUE_AS_NEW = 40
# Answers are recorded as a task.message event (who answered, by which channel) from here on.
REPLY_EVENT_PATCH = "reply-origin-event"

RECORD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
# Local records retry quickly at first: the first one may run before the API's row insert
# (which overlaps the workflow start) has committed.
LOCAL_RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=100), backoff_coefficient=2.0, maximum_interval=timedelta(seconds=10)
)
AGENT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    non_retryable_error_types=[PROVIDER_CLIENT_ERROR, MODEL_NOT_CONFIGURED],
)


@workflow.defn(name=TASK_WORKFLOW)
class TaskWorkflow:
    @workflow.init
    def __init__(self, inp: TaskInput) -> None:
        carried = inp.carried or TaskCarryOver()
        self._input = inp
        self._messages: list[ChatMessage] = list(carried.messages)
        self._pending: list[str] = list(carried.pending_messages)
        self._retry_count = carried.retry_count
        self._turns = carried.turns
        self._started = carried.started
        self._status = TaskStatus.RUNNING.value if carried.started else TaskStatus.QUEUED.value
        self._required_action: RequiredAction | None = None
        self._reply: str | None = None
        self._reply_origin: tuple[str, str | None] = (VIA_API, None)
        self._slot_granted = False
        self._holds_slot = False
        # True for executions that run the tool loop (codetether/agent/loop.py).
        self._agent = False
        # True for executions that record by local activity (LEAN_TASK_PATCH).
        self._lean = False
        # Set when the record that ended or parked the run also freed the slot.
        self._release_sent = False

    # ---- handlers -------------------------------------------------------------------------

    @workflow.query
    def get_status(self) -> TaskSnapshot:
        return TaskSnapshot(
            task_id=self._input.task_id,
            run_id=self._input.run_id,
            status=self._status,
            required_action=self._required_action,
            turns=self._turns,
            pending_messages=len(self._pending),
        )

    @workflow.update(name=PROVIDE_INPUT_UPDATE)
    def provide_input(self, inp: ProvideInputInput) -> ProvideInputResult:
        self._reply = inp.message
        self._reply_origin = (inp.via, inp.sender)
        return ProvideInputResult(accepted=True, status=TaskStatus.RUNNING.value)

    @provide_input.validator
    def _validate_provide_input(self, inp: ProvideInputInput) -> None:
        if self._status != TaskStatus.NEEDS_INPUT.value or self._required_action is None or self._reply is not None:
            raise ApplicationError(f"task is {self._status}, not waiting for input", type="not_waiting")
        if inp.required_action_id is not None and inp.required_action_id != self._required_action.id:
            raise ApplicationError("required_action_id is not the pending action", type="stale_action")

    @workflow.update(name=SEND_MESSAGE_UPDATE)
    def send_message(self, inp: SendMessageInput) -> SendMessageResult:
        if self._status == TaskStatus.NEEDS_INPUT.value and self._reply is None:
            self._reply = inp.message
            self._reply_origin = (inp.via, inp.sender)
            return SendMessageResult(delivered_as="reply", status=TaskStatus.RUNNING.value)
        self._pending.append(inp.message)
        return SendMessageResult(delivered_as="queued", status=self._status)

    @send_message.validator
    def _validate_send_message(self, inp: SendMessageInput) -> None:
        if self._status in (TaskStatus.COMPLETED.value, TaskStatus.FAILED.value, TaskStatus.CANCELLED.value):
            raise ApplicationError(f"task is {self._status}", type="terminal")

    @workflow.signal(name=GRANT_SLOT_SIGNAL)
    def grant_slot(self, grant: SlotGrant) -> None:
        self._slot_granted = True

    # ---- main -----------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: TaskInput) -> TaskResult:
        if not self._messages:
            self._messages = initial_messages(inp)
        self._lean = workflow.patched(LEAN_TASK_PATCH)
        try:
            return await self._run()
        except BaseException as err:  # noqa: BLE001 - cancellation arrives as several types
            if not is_cancelled_exception(err):
                raise
            # Record the end before freeing the slot, so no reader ever sees more tasks running
            # than the limit (the next task's "started" cannot overtake this one's end).
            await self._finish(
                "task.cancelled",
                TaskChanges(status=TaskStatus.CANCELLED.value, clear_required_action=True),
            )
            await self._release_slot()
            raise

    async def _run(self) -> TaskResult:
        # Executions started before the tool loop existed replay the single-turn path below.
        # A lean execution started after the tool loop and reply events existed: it needs neither
        # of their markers (nor the search-attribute upsert each marker brings).
        self._agent = self._lean or workflow.patched(AGENT_LOOP_PATCH)
        # Without a slot to wait for, the first transitions are written together in one record.
        merge = self._lean and self._input.concurrency_limit is None
        first: list[RecordEventInput] = []
        if not self._started and self._input.follow_up is None and self._input.carried is None:
            first.append(self._event("task.created", TaskChanges()))
        # (A follow-up run is never a first run: at most one of the two events is made.)
        if self._input.follow_up is not None and self._input.carried is None and self._replies_recorded():
            first.append(self._follow_up_event())
        if first and not merge:
            await self._write(first)
            first = []
        await self._acquire_slot()
        self._status = TaskStatus.RUNNING.value
        if not self._started:
            self._started = True
            first.append(
                self._event("task.started", TaskChanges(status=self._status, started_at=iso(workflow.now()), clear_error=True))
            )
        else:
            first.append(self._event(None, TaskChanges(status=self._status, clear_required_action=True)))
        await self._write(first)

        if self._agent:
            return await AgentLoop(self, self._input).run()

        while True:
            if self._pending:
                self._messages.extend(ChatMessage(role="user", content=m) for m in self._pending)
                self._pending.clear()
            try:
                turn = await self._agent_turn()
            except ActivityError as err:
                if is_cancelled_exception(err):
                    raise
                return await self._fail_from_activity(err)
            self._messages.extend(turn.new_messages)
            self._turns += 1

            if turn.kind == "question":
                try:
                    reply = await self._ask(turn)
                except InputTimeout:
                    return await self._fail(ErrorCode.INPUT_TIMEOUT, "no reply arrived before the input timeout")
                self._messages.append(ChatMessage(role="tool", content=reply, tool_call_id=turn.tool_call_id))
                if self._input.concurrency_limit is not None:
                    # The answer is in, but the task may wait for a running slot again: show it
                    # as queued rather than still asking the answered question.
                    self._status = TaskStatus.QUEUED.value
                    await self._record(None, TaskChanges(status=self._status, clear_required_action=True))
                if self._should_continue_as_new():
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    workflow.continue_as_new(self._carry_over())
                await self._acquire_slot()
                self._status = TaskStatus.RUNNING.value
                await self._record(None, TaskChanges(status=self._status, clear_required_action=True))
                continue
            if self._pending:
                continue
            # Set synchronously: from here on a message starts a follow-up run instead.
            self._status = TaskStatus.COMPLETED.value
            await self._finish(
                "task.completed",
                TaskChanges(
                    status=self._status,
                    result=turn.text,
                    retry_count=self._retry_count,
                    clear_required_action=True,
                    clear_error=True,
                ),
            )
            await self._release_slot()
            return TaskResult(task_id=self._input.task_id, run_id=self._input.run_id, status=self._status, result=turn.text)

    async def _agent_turn(self) -> RunAgentResult:
        inp = self._input
        turn: RunAgentResult = await workflow.execute_activity_method(
            TaskActivities.run_agent,
            RunAgentInput(
                task_id=inp.task_id,
                run_id=inp.run_id,
                owner_id=inp.owner_id,
                model=inp.model,
                agent_type=inp.agent_type,
                messages=self._messages,
            ),
            start_to_close_timeout=AGENT_TURN_TIMEOUT,
            heartbeat_timeout=AGENT_HEARTBEAT_TIMEOUT,
            retry_policy=AGENT_RETRY,
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        self._retry_count += max(0, turn.attempt - 1)
        return turn

    async def _ask(self, turn: RunAgentResult) -> str:
        """Parks the task in needs_input until a reply arrives (no worker slot held meanwhile)."""
        action = RequiredAction(
            id=self._new_id("act_"),
            kind="question",
            prompt=turn.question or "",
            asked_at=iso(workflow.now()) or "",
        )
        self._required_action = action
        self._reply = None
        self._status = TaskStatus.NEEDS_INPUT.value
        await self._record(
            "task.needs_input",
            TaskChanges(status=self._status, required_action=action, conversation=None if self._agent else self._messages),
            release_slot=True,
        )
        # Freed only once needs_input is recorded (see run(): no reader may see too many running).
        await self._release_slot()
        timeout = self._input.input_timeout_seconds
        try:
            await workflow.wait_condition(
                lambda: self._reply is not None,
                timeout=timedelta(seconds=timeout) if timeout else None,
            )
        except asyncio.TimeoutError:
            raise InputTimeout() from None
        reply = self._reply or ""
        self._reply = None
        self._required_action = None
        self._status = TaskStatus.RUNNING.value
        if self._replies_recorded():
            await self._record_reply(action, reply)
        return reply

    def _follow_up_event(self) -> RecordEventInput:
        inp = self._input
        return self._event(
            MESSAGE_EVENT,
            TaskChanges(),
            details={"kind": "follow_up", "via": inp.follow_up_via or VIA_API, "from": inp.follow_up_sender,
                     "required_action_id": None, "text": inp.follow_up},
        )

    async def _record_reply(self, action: RequiredAction, reply: str) -> None:
        via, sender = self._reply_origin
        # The status the run shows next: queued when it must wait for a running slot again.
        status = TaskStatus.QUEUED.value if self._input.concurrency_limit is not None else TaskStatus.RUNNING.value
        await self._record(
            MESSAGE_EVENT,
            TaskChanges(status=status, clear_required_action=True),
            details={"kind": "reply", "via": via, "from": sender, "required_action_id": action.id, "text": reply},
        )

    async def _resume_after_answer(self) -> None:
        """After a reply: wait for a running slot again (shown as queued), then run on."""
        if self._input.concurrency_limit is not None:
            self._status = TaskStatus.QUEUED.value
            await self._record(None, TaskChanges(status=self._status, clear_required_action=True))
        await self._acquire_slot()
        self._status = TaskStatus.RUNNING.value
        await self._record(None, TaskChanges(status=self._status, clear_required_action=True))

    # ---- endings --------------------------------------------------------------------------

    async def _fail_from_activity(self, err: ActivityError) -> TaskResult:
        cause = err.cause
        code, message = ErrorCode.AGENT_ERROR, str(cause or err)
        if isinstance(cause, ApplicationError):
            message = cause.message
            details = cause.details[0] if cause.details else {}
            if isinstance(details, dict):
                code = details.get("code", code)
                self._retry_count += max(0, int(details.get("attempt", 1)) - 1)
            if cause.type == MODEL_NOT_CONFIGURED:
                code = ErrorCode.MODEL_UNAVAILABLE
        return await self._fail(code, message)

    async def _fail(self, code: str, message: str) -> TaskResult:
        self._status = TaskStatus.FAILED.value
        await self._finish(
            "task.failed",
            TaskChanges(
                status=self._status,
                error_code=code,
                error_message=message,
                retry_count=self._retry_count,
                clear_required_action=True,
            ),
        )
        await self._release_slot()
        return TaskResult(
            task_id=self._input.task_id,
            run_id=self._input.run_id,
            status=self._status,
            error_code=code,
            error_message=message,
        )

    async def _finish(self, event_type: str, changes: TaskChanges) -> None:
        self._status = changes.status or self._status
        self._required_action = None
        changes.completed_at = iso(workflow.now())
        # The tool loop's transcript is in the database already (finalize copies it).
        changes.conversation = None if self._agent else self._messages
        changes.progress = None
        await self._record(event_type, changes, release_slot=True)
        await workflow.wait_condition(workflow.all_handlers_finished)

    async def _record(
        self, event_type: str | None, changes: TaskChanges, details: dict | None = None, *, release_slot: bool = False
    ) -> None:
        await self._write([self._event(event_type, changes, details)], release_slot=release_slot)

    def _event(self, event_type: str | None, changes: TaskChanges, details: dict | None = None) -> RecordEventInput:
        if changes.status:
            workflow.upsert_search_attributes([SA_STATUS.value_set(changes.status)])
        now = workflow.now()
        event_id = self._new_id("evt_")
        return RecordEventInput(
            task_id=self._input.task_id,
            run_id=self._input.run_id,
            event_id=event_id,
            event_type=event_type,
            changes=changes,
            occurred_at=iso(now) or "",
            details=details,
        )

    async def _write(self, events: list[RecordEventInput], *, release_slot: bool = False) -> None:
        """Writes the transitions to the database. ``release_slot``: the run ends or parks, so
        its running slot is freed right after (by the same local activity on the patched path;
        older executions signal afterwards, in ``_release_slot``)."""
        if not self._lean:
            for ev in events:
                await workflow.execute_activity_method(
                    TaskActivities.record_event, ev, start_to_close_timeout=RECORD_TIMEOUT, retry_policy=RECORD_RETRY
                )
            return
        owner = None
        if release_slot and self._input.concurrency_limit is not None:
            owner = self._input.owner_id
            self._holds_slot = False
            self._slot_granted = False
            self._release_sent = True
        await workflow.execute_local_activity_method(
            TaskActivities.record_events,
            RecordEventsInput(task_id=self._input.task_id, events=events, release_slot_owner=owner),
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=LOCAL_RECORD_RETRY,
        )

    def _new_id(self, prefix: str) -> str:
        """An event or action id, the same on every replay. A lean execution writes before its
        workflow task completes (local activities), so a timed-out workflow task that runs again
        must make the same ids; its time part is therefore the run's start, not workflow.now()
        (the start of whichever attempt of the workflow task is running)."""
        when = workflow.info().start_time if self._lean else workflow.now()
        return prefix + ulid(int(when.timestamp() * 1000), workflow.random().randbytes(10))

    def _replies_recorded(self) -> bool:
        return self._lean or workflow.patched(REPLY_EVENT_PATCH)

    # ---- concurrency slots ----------------------------------------------------------------

    async def _acquire_slot(self) -> None:
        """Waits (status queued) until the owner's concurrency workflow grants a running slot."""
        if self._input.concurrency_limit is None or self._holds_slot:
            return
        # Not reset here: a workflow task that timed out and runs again may see the grant (a
        # signal in its history) before it reaches this point. It is reset when the slot goes.
        request = SlotRequestInput(
            owner_id=self._input.owner_id,
            limit=self._input.concurrency_limit,
            task_id=self._input.task_id,
            priority=self._input.priority,
            requested_at=iso(workflow.now()) or "",
        )
        if self._lean:
            await workflow.execute_local_activity_method(
                TaskActivities.request_slot, request, start_to_close_timeout=RECORD_TIMEOUT, retry_policy=LOCAL_RECORD_RETRY
            )
        else:
            await workflow.execute_activity_method(
                TaskActivities.request_slot, request, start_to_close_timeout=RECORD_TIMEOUT, retry_policy=RECORD_RETRY
            )
        await workflow.wait_condition(lambda: self._slot_granted)
        self._holds_slot = True

    async def _release_slot(self) -> None:
        if self._input.concurrency_limit is None:
            return
        if self._release_sent:
            # The record that ended or parked the run freed the slot already.
            self._release_sent = False
            return
        # Also withdraws a request still waiting in the queue (cancel while queued).
        self._holds_slot = False
        self._slot_granted = False
        handle = workflow.get_external_workflow_handle(concurrency_workflow_id(self._input.owner_id))
        try:
            await handle.signal(RELEASE_SLOT_SIGNAL, SlotRelease(task_id=self._input.task_id))
        except FailureError:
            # The owner's concurrency workflow is gone (or never started), so nothing is held.
            pass

    # ---- continue-as-new ------------------------------------------------------------------

    def _should_continue_as_new(self) -> bool:
        return workflow.info().is_continue_as_new_suggested() or self._turns >= TURNS_BEFORE_CONTINUE_AS_NEW

    def _carry_over(self) -> TaskInput:
        inp = self._input
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
                messages=self._messages,
                pending_messages=self._pending,
                retry_count=self._retry_count,
                turns=0,
                started=True,
            ),
        )
