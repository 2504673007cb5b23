"""TaskWorkflow: one durable workflow per task (workflow id = task_id).

Driven by ``POST /v1/automation/tasks`` (start), ``DELETE …/tasks/{id}`` (cancel),
``POST …/input`` and ``…/messages`` (updates). Each agent turn is an activity; when the model
calls ``ask_user`` the activity returns and the workflow parks in ``needs_input`` holding no worker
slot. Every transition is written to the database (``codetether/tasks/recording.py``) so the API
answers reads without a worker. A follow-up message to a finished task starts a new execution with
the same workflow id and the conversation so far.

The run's state is one :class:`TaskRunState`; the workflow hands it, and itself as the
:class:`codetether.agent.host.AgentHost`, to the tool loop (``codetether/agent/loop.py``), or to the
single-turn path older executions replay (``codetether/tasks/legacy_turn.py``).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    # TaskInput carries the agent's dataclasses; the payload converter resolves their forward
    # references through sys.modules, which in the sandbox holds only what this file imports.
    import codetether.agent.contracts  # noqa: F401
    from codetether.agent.loop import AgentLoop
    from codetether.agent.prompts import initial_messages
    from codetether.concurrency.contracts import GRANT_SLOT_SIGNAL, SlotGrant
    from codetether.core.ids import iso
    from codetether.tasks.cancellation import raise_if_cancel_requested
    from codetether.tasks.answers import answer_text, refusal
    from codetether.tasks.contracts import (
        ACTION_QUESTION,
        AGENT_LOOP_PATCH,
        DECISION_KINDS,
        LEAN_TASK_PATCH,
        MESSAGE_EVENT,
        PROVIDE_INPUT_UPDATE,
        SEND_MESSAGE_UPDATE,
        TASK_WORKFLOW,
        VIA_API,
        ProvideInputInput,
        ProvideInputResult,
        RecordEventInput,
        RequiredAction,
        SendMessageInput,
        SendMessageResult,
        TaskChanges,
        TaskInput,
        TaskResult,
        TaskSnapshot,
        TaskStatus,
    )
    from codetether.tasks.legacy_turn import run_single_turns
    from codetether.tasks.recording import TaskRecorder
    from codetether.tasks.run_state import TaskRunState
    from codetether.tasks.slots import RunningSlot


@workflow.defn(name=TASK_WORKFLOW)
class TaskWorkflow:
    @workflow.init
    def __init__(self, inp: TaskInput) -> None:
        self._input = inp
        self._state = TaskRunState.carried_over(inp.carried)
        self._slot = RunningSlot(inp, self._state)
        self._recorder = TaskRecorder(inp, self._state, self._slot)

    # ---- handlers -------------------------------------------------------------------------

    @workflow.query
    def get_status(self) -> TaskSnapshot:
        state = self._state
        return TaskSnapshot(
            task_id=self._input.task_id,
            run_id=self._input.run_id,
            status=state.status,
            required_action=state.required_action,
            turns=state.turns,
            pending_messages=len(state.pending),
        )

    @workflow.update(name=PROVIDE_INPUT_UPDATE)
    def provide_input(self, inp: ProvideInputInput) -> ProvideInputResult:
        state = self._state
        structured = inp.choice is not None or inp.answer is not None or inp.decision is not None
        state.reply = (
            answer_text(message=inp.message, choice=inp.choice, answer=inp.answer, decision=inp.decision)
            if structured else inp.message
        )
        state.reply_origin = (inp.via, inp.sender)
        state.reply_decision, state.reply_choice, state.reply_message = inp.decision, inp.choice, inp.message
        state.reply_answer = inp.answer
        return ProvideInputResult(accepted=True, status=TaskStatus.RUNNING.value)

    @provide_input.validator
    def _validate_provide_input(self, inp: ProvideInputInput) -> None:
        state = self._state
        if state.status != TaskStatus.NEEDS_INPUT.value or state.required_action is None or state.reply is not None:
            raise ApplicationError(f"task is {state.status}, not waiting for input", type="not_waiting")
        if inp.required_action_id is not None and inp.required_action_id != state.required_action.id:
            raise ApplicationError("required_action_id is not the pending action", type="stale_action")
        problem = refusal(state.required_action, message=inp.message, choice=inp.choice, answer=inp.answer,
                          decision=inp.decision)
        if problem is not None:
            raise ApplicationError(problem.message, type=problem.code)

    @workflow.update(name=SEND_MESSAGE_UPDATE)
    def send_message(self, inp: SendMessageInput) -> SendMessageResult:
        state = self._state
        # A message answers a pending question; an approval waits for its decision, so a message
        # then is for the agent's next turn.
        action = state.required_action
        if (state.status == TaskStatus.NEEDS_INPUT.value and state.reply is None
                and (action is None or action.kind not in DECISION_KINDS)):
            state.reply = inp.message
            state.reply_decision, state.reply_choice, state.reply_message = None, None, inp.message
            state.reply_origin = (inp.via, inp.sender)
            return SendMessageResult(delivered_as="reply", status=TaskStatus.RUNNING.value)
        state.pending.append(inp.message)
        return SendMessageResult(delivered_as="queued", status=state.status)

    @send_message.validator
    def _validate_send_message(self, inp: SendMessageInput) -> None:
        status = self._state.status
        if status in (TaskStatus.COMPLETED.value, TaskStatus.FAILED.value, TaskStatus.CANCELLED.value):
            raise ApplicationError(f"task is {status}", type="terminal")

    @workflow.signal(name=GRANT_SLOT_SIGNAL)
    def grant_slot(self, grant: SlotGrant) -> None:
        self._slot.grant()

    # ---- main -----------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: TaskInput) -> TaskResult:
        state = self._state
        if not state.messages:
            state.messages = initial_messages(inp)
        state.lean = workflow.patched(LEAN_TASK_PATCH)
        try:
            return await self._run()
        except BaseException as err:  # noqa: BLE001 - cancellation arrives as several types
            if not is_cancelled_exception(err):
                raise
            # Record the end before freeing the slot, so no reader ever sees more tasks running
            # than the limit (the next task's "started" cannot overtake this one's end).
            await self.end_run("task.cancelled", TaskChanges(status=TaskStatus.CANCELLED.value, clear_required_action=True))
            raise

    async def _run(self) -> TaskResult:
        state, inp = self._state, self._input
        # Executions started before the tool loop existed replay the single-turn path.
        # A lean execution started after the tool loop and reply events existed: it needs neither
        # of their markers (nor the search-attribute upsert each marker brings).
        state.agent = state.lean or workflow.patched(AGENT_LOOP_PATCH)
        await self._open_run()
        if state.agent:
            return await AgentLoop(inp, state, self).run()
        return await run_single_turns(inp, state, self)

    async def _open_run(self) -> None:
        """Records the run's opening (created, or the follow-up message), waits for a running slot,
        and records started (or running again, after continue-as-new or on a follow-up)."""
        state, inp, rec = self._state, self._input, self._recorder
        # Without a slot to wait for, the first transitions are written together in one record.
        merge = state.lean and inp.concurrency_limit is None
        first: list[RecordEventInput] = []
        if not state.started and inp.follow_up is None and inp.carried is None:
            first.append(rec.event("task.created", TaskChanges()))
        # (A follow-up run is never a first run: at most one of the two events is made.)
        if inp.follow_up is not None and inp.carried is None and rec.replies_recorded():
            first.append(
                rec.event(
                    MESSAGE_EVENT,
                    TaskChanges(),
                    details={"kind": "follow_up", "via": inp.follow_up_via or VIA_API, "from": inp.follow_up_sender,
                             "required_action_id": None, "text": inp.follow_up},
                )
            )
        if first and not merge:
            await rec.write(first)
            first = []
        await self._slot.acquire()
        state.status = TaskStatus.RUNNING.value
        if not state.started:
            state.started = True
            first.append(
                rec.event("task.started", TaskChanges(status=state.status, started_at=iso(workflow.now()), clear_error=True))
            )
        else:
            first.append(rec.event(None, TaskChanges(status=state.status, clear_required_action=True)))
        await rec.write(first)

    # ---- the host of both paths (codetether.agent.host.AgentHost) --------------------------

    async def ask(
        self,
        question: str,
        *,
        kind: str = ACTION_QUESTION,
        options: list[str] | None = None,
        answer_schema: dict | None = None,
        artifact: dict | None = None,
    ) -> str | None:
        """Parks the task in needs_input until a reply arrives (no worker slot held meanwhile);
        None when the input timeout passes first. The answer's decision and choice are left in the
        run state (``reply_decision``, ``reply_choice``, ``reply_message``)."""
        state, rec = self._state, self._recorder
        raise_if_cancel_requested()
        action = RequiredAction(id=rec.new_id("act_"), kind=kind, prompt=question, asked_at=iso(workflow.now()) or "",
                                options=options, answer_schema=answer_schema, artifact=artifact)
        state.required_action = action
        state.reply = None
        state.reply_decision = state.reply_choice = state.reply_message = None
        state.status = TaskStatus.NEEDS_INPUT.value
        await rec.record(
            "task.needs_input",
            TaskChanges(status=state.status, required_action=action, conversation=None if state.agent else state.messages),
            release_slot=True,
        )
        # Freed only once needs_input is recorded (see run(): no reader may see too many running).
        await self._slot.release()
        timeout = self._input.input_timeout_seconds
        try:
            await workflow.wait_condition(
                lambda: state.reply is not None,
                timeout=timedelta(seconds=timeout) if timeout else None,
            )
        except asyncio.TimeoutError:
            return None
        reply = state.reply or ""
        state.reply = None
        state.required_action = None
        state.status = TaskStatus.RUNNING.value
        if rec.replies_recorded():
            via, sender = state.reply_origin
            # The status the run shows next: queued when it must wait for a running slot again.
            shown = TaskStatus.QUEUED.value if self._input.concurrency_limit is not None else TaskStatus.RUNNING.value
            details = {"kind": "reply", "via": via, "from": sender, "required_action_id": action.id, "text": reply}
            if state.reply_decision is not None:
                details["decision"] = state.reply_decision
            if state.reply_choice is not None:
                details["choice"] = state.reply_choice
            await rec.record(MESSAGE_EVENT, TaskChanges(status=shown, clear_required_action=True), details=details)
        return reply

    async def resume_after_answer(self) -> None:
        """After a reply: wait for a running slot again (shown as queued), then run on."""
        if self._input.concurrency_limit is not None:
            self._state.status = TaskStatus.QUEUED.value
            await self.record(None, TaskChanges(status=self._state.status, clear_required_action=True))
        await self.acquire_slot()
        self._state.status = TaskStatus.RUNNING.value
        await self.record(None, TaskChanges(status=self._state.status, clear_required_action=True))

    async def record(self, event_type: str | None, changes: TaskChanges) -> None:
        await self._recorder.record(event_type, changes)

    async def acquire_slot(self) -> None:
        await self._slot.acquire()

    async def end_run(self, event_type: str, changes: TaskChanges) -> None:
        """Records the end, waits for running update handlers, then frees the running slot."""
        state = self._state
        state.status = changes.status or state.status
        state.required_action = None
        changes.completed_at = iso(workflow.now())
        # The tool loop's transcript is in the database already (finalize copies it).
        changes.conversation = None if state.agent else state.messages
        changes.progress = None
        await self._recorder.record(event_type, changes, release_slot=True)
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._slot.release()
