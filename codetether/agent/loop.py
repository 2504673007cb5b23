"""The coding agent's loop inside :class:`codetether.tasks.workflow.TaskWorkflow` (tasks started since the
``agent-tool-loop-v1`` patch; older executions keep the single-activity turn they started with,
``codetether/tasks/legacy_turn.py``).

prepare workspace → model turn → tool calls → (checkpoint if files changed) → model turn … →
finalize → cleanup. A task without a codebase (since ``lean-task-v1``) prepares its scratch
workspace only when a tool first needs it, so an answer without tools costs one activity. Every
model turn and every tool call is its own activity, so a crash loses at most the step in flight.
``ask_user`` stays a workflow wait (no worker slot, no activity held); a tool the agent type does
not allow is answered with an error result without running anything. The workspace and its
activities are :class:`codetether.agent.workspace_session.WorkspaceSession`.
The transcript lives in the database: this loop only hands out sequence numbers.

The loop is given the task's run state (:class:`codetether.tasks.run_state.TaskRunState`) and its
host (:class:`codetether.agent.host.AgentHost`, the workflow) explicitly.
"""

from __future__ import annotations

import json
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from codetether.agent.activities import AgentActivities
    from codetether.agent.contracts import (
        MODEL_NOT_CONFIGURED,
        PROVIDER_CLIENT_ERROR,
        TOKEN_BUDGET_EXCEEDED,
        AgentCarry,
        AgentErrorCode,
        ChatMessage,
        FinalizeResult,
        ModelTurnInput,
        ModelTurnResult,
        ToolCall,
        TranscriptEntry,
        Usage,
    )
    from codetether.agent.host import AgentHost
    from codetether.agent.prompts import (
        APPROVAL_PROMPT,
        agent_initial_messages,
        plan_approved_message,
        plan_rejected_message,
        plans_first,
    )
    from codetether.agent.structured import (
        MAX_INVALID_ANSWERS,
        SUBMIT_RESULT,
        answer_problems,
        json_answer,
        retry_message,
    )
    from codetether.agent.tools import ASK_USER, READ_ONLY_TYPES, allowed
    from codetether.agent.workspace_session import HEARTBEAT_TIMEOUT, WorkspaceSession
    from codetether.agent.asking import clean_options, clean_schema
    from codetether.agent.budget_ask import ask_for_budget, budget_question, budget_refusal
    from codetether.files.activities import FileActivities
    from codetether.files.contracts import ATTACHMENT_ERROR, FetchAttachmentsInput, FetchAttachmentsResult
    from codetether.tasks.contracts import (
        ACTION_APPROVAL,
        APPROVE,
        ErrorCode,
        TaskCarryOver,
        TaskChanges,
        TaskInput,
        TaskResult,
        TaskStatus,
    )
    from codetether.tasks.cancellation import raise_if_cancel_requested
    from codetether.tasks.run_state import TaskRunState

DEFAULT_MAX_TURNS = 50
# Turns in one execution before a fresh history (continue-as-new) even if the server does not ask.
TURNS_PER_EXECUTION = 40

MODEL_TURN_TIMEOUT = timedelta(minutes=30)

# Attachment URLs: each download may take attachment_fetch_timeout_seconds; a refusal is final.
FETCH_TIMEOUT = timedelta(minutes=15)
FETCH_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(seconds=30),
                          maximum_attempts=3, non_retryable_error_types=[ATTACHMENT_ERROR])
# The phase of a task that plans before its approval (it runs as a plan agent until then).
PLAN_PHASE = "plan"
# How much of a plan an approval shows inline (the whole plan is its artifact).
PLAN_SHOWN_CHARS = 32 * 1024

MODEL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    non_retryable_error_types=[PROVIDER_CLIENT_ERROR, MODEL_NOT_CONFIGURED, TOKEN_BUDGET_EXCEEDED],
)


async def _turn(turn_input: ModelTurnInput) -> ModelTurnResult:
    """One model turn, on the shared queue. It usually runs on the worker that holds the run's
    workspace (the worker that keeps the workflow cached takes its activities eagerly, and it
    prepared the workspace the same way), which then runs the turn's leading read-only tool calls
    itself: one activity per step. Elsewhere every call goes to the workspace's worker as before."""
    return await workflow.execute_activity_method(
        AgentActivities.model_turn,
        turn_input,
        start_to_close_timeout=MODEL_TURN_TIMEOUT,
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
        retry_policy=MODEL_RETRY,
        cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    )


class AgentLoop:
    def __init__(self, inp: TaskInput, state: TaskRunState, host: AgentHost) -> None:
        self.inp = inp
        self.state = state
        self.host = host
        carry = inp.carried.agent if inp.carried is not None else None
        # A codebase is cloned up front (a bad repository fails before any model tokens are
        # spent); a scratch workspace waits for the first tool that needs one. Plan and explore
        # runs always finalize (their plan or findings become artifacts).
        # A task with input files prepares its workspace up front too: they are there for the first tool.
        lazy = (state.lean and inp.codebase_id is None and inp.agent_type not in READ_ONLY_TYPES
                and inp.require_approval is None and not inp.attachments)
        if carry is not None:
            self.seq = carry.seq
            self.usage = carry.usage
            self.workspace = WorkspaceSession(inp, carry.workspace, carry.checkpoint_id, lazy=lazy)
            self.append: list[TranscriptEntry] = list(carry.append)
            self.invalid_answers = carry.invalid_answers
            self.phase, self.plan_revision, self.plan_artifact = carry.phase, carry.plan_revision, carry.plan_artifact
        else:
            self.seq, self.usage, self.append, self.invalid_answers = 0, Usage(), [], 0
            self.phase = PLAN_PHASE if plans_first(inp) else None
            self.plan_revision, self.plan_artifact = 0, None
            self.workspace = WorkspaceSession(inp, None, None, lazy=lazy)
            # Attachment URLs are fetched first; the opening messages then list what they brought.
            if not self._urls_to_fetch():
                self._open()
        self.turns_here = 0
        self.max_turns = inp.max_turns or DEFAULT_MAX_TURNS
        # Set when the model submits an answer that matches the task's output schema.
        self.submitted: dict | None = None
        self.last_problems: list[str] = []

    def _open(self) -> None:
        for message in agent_initial_messages(self.inp):
            self._add(message)

    def _urls_to_fetch(self) -> bool:
        return any(a.file_id is None for a in self.inp.attachments or [])

    async def _fetch_attachments(self) -> None:
        """Downloads the task's attachment URLs into the file storage (only tasks that have some)."""
        inp = self.inp
        fetched: FetchAttachmentsResult = await workflow.execute_activity_method(
            FileActivities.fetch_attachments,
            FetchAttachmentsInput(task_id=inp.task_id, owner_id=inp.owner_id, attachments=list(inp.attachments or [])),
            start_to_close_timeout=FETCH_TIMEOUT,
            retry_policy=FETCH_RETRY,
        )
        inp.attachments = fetched.attachments
        self._open()

    @property
    def agent_type(self) -> str:
        """The agent type this step runs as: ``plan`` until a plan-first task's plan is approved."""
        return "plan" if self.phase == PLAN_PHASE else self.inp.agent_type

    def _add(self, message: ChatMessage, seq: int | None = None) -> None:
        if seq is None:
            seq, self.seq = self.seq, self.seq + 1
        self.append.append(TranscriptEntry(seq=seq, message=message))

    # ---- main -----------------------------------------------------------------------------

    async def run(self) -> TaskResult:
        try:
            return await self._loop()
        except BaseException as err:  # noqa: BLE001 - cancellation arrives as several types
            if is_cancelled_exception(err):
                await self.workspace.cleanup()
            raise

    async def _loop(self) -> TaskResult:
        state, workspace = self.state, self.workspace
        try:
            if self.seq == 0 and self._urls_to_fetch():
                await self._fetch_attachments()
            if workspace.ws is None and not workspace.lazy:
                await workspace.prepare()
        except ActivityError as err:
            # A cancel that arrives while the workspace is prepared ends the task as cancelled.
            if is_cancelled_exception(err):
                raise
            return await self._fail_from(err)
        while True:
            raise_if_cancel_requested()
            for text in state.take_pending():
                self._add(ChatMessage(role="user", content=text))
            if self.usage.turns >= self.max_turns:
                return await self._stop(AgentErrorCode.MAX_TURNS, f"the agent used all {self.max_turns} turns without finishing")
            try:
                turn = await self._model_turn()
            except ActivityError as err:
                if is_cancelled_exception(err):
                    raise
                refusal = budget_refusal(err)
                if refusal is not None and refusal.get("on_exhaust") == "ask":
                    approved = await ask_for_budget(self.host, state, self.inp, refusal)
                    if approved:
                        continue
                    if approved is None:
                        return await self._stop(ErrorCode.INPUT_TIMEOUT, "no reply arrived before the input timeout")
                    return await self._stop(AgentErrorCode.BUDGET, "the budget was not raised: " + budget_question(refusal))
                return await self._fail_from(err)
            self.usage.turns += 1
            self.turns_here += 1
            state.turns += 1
            self.usage.add_turn(turn)
            if turn.kind == "final":
                if state.pending:
                    continue
                if self.phase == PLAN_PHASE:
                    try:
                        if not await self._review_plan(turn.text):
                            return await self._stop(ErrorCode.INPUT_TIMEOUT, "no decision on the plan arrived before the input timeout")
                    except ActivityError as err:
                        if is_cancelled_exception(err):
                            raise
                        return await self._fail_from(err)
                    continue
                if self.inp.output_schema is None:
                    return await self._complete(turn.text)
                # A structured task's prose answer counts only if it is itself the object.
                problems = self._check_answer(json_answer(turn.text))
                if not problems:
                    return await self._complete(turn.text, self.submitted)
                if self.invalid_answers >= MAX_INVALID_ANSWERS:
                    return await self._stop(ErrorCode.OUTPUT_INVALID, self._invalid_message(problems))
                self._add(ChatMessage(role="user", content=retry_message(problems)))
                continue

            base, self.seq = self.seq, self.seq + len(turn.tool_calls)
            changed = False
            # The leading read-only calls the turn already ran on the workspace's worker.
            done = len(turn.tool_results)
            self.usage.tool_calls += done
            for i, call in enumerate(turn.tool_calls[done:], start=done):
                result = await self._call(call, base + i)
                if result is None:  # a wait that ended the task (input timeout)
                    return await self._stop(ErrorCode.INPUT_TIMEOUT, "no reply arrived before the input timeout")
                changed = changed or result
            if changed:
                await workspace.checkpoint()
            if self.submitted is not None:
                return await self._complete(turn.text, self.submitted)
            if self.invalid_answers >= MAX_INVALID_ANSWERS:
                return await self._stop(ErrorCode.OUTPUT_INVALID, self._invalid_message(self.last_problems))
            if workflow.info().is_continue_as_new_suggested() or self.turns_here >= TURNS_PER_EXECUTION:
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self._carry())

    async def _model_turn(self) -> ModelTurnResult:
        seq, self.seq = self.seq, self.seq + 1
        append, self.append = self.append, []
        inp = self.inp
        ws = self.workspace.ws
        turn_input = ModelTurnInput(
            task_id=inp.task_id, run_id=inp.run_id, owner_id=inp.owner_id, model=inp.model,
            agent_type=self.agent_type, append=append, seq=seq,
            tokens_used=self.usage.input_tokens + self.usage.output_tokens,
            output_schema=inp.output_schema if self.phase is None else None,
            workspace=ws,
        )
        try:
            turn = await _turn(turn_input)
        except BaseException:
            self.append = append + self.append
            raise
        self.state.count_attempts(turn.attempt)
        return turn

    def _check_answer(self, answer: object) -> list[str]:
        """[] when ``answer`` matches the output schema (it becomes the result), else the problems
        (counted: the model may correct MAX_INVALID_ANSWERS of them)."""
        schema = self.inp.output_schema or {}
        problems = ["(root): the answer must be a JSON object"] if not isinstance(answer, dict) else answer_problems(schema, answer)
        if problems:
            self.invalid_answers += 1
            self.last_problems = problems
        else:
            self.submitted = answer
        return problems

    def _invalid_message(self, problems: list[str]) -> str:
        return f"the answer did not match the output schema after {self.invalid_answers} tries: " + "; ".join(problems[:3])

    async def _call(self, call: ToolCall, seq: int) -> bool | None:
        """Runs one tool call; True if it may have changed files, None if the task must end."""
        if call.name == SUBMIT_RESULT and self.inp.output_schema is not None:
            if self.submitted is not None:
                self._add(ChatMessage(role="tool", tool_call_id=call.id, content="error: a result was already submitted"), seq)
                return False
            problems = self._check_answer(call.arguments)
            reply = "the result was accepted" if not problems else retry_message(problems)
            self._add(ChatMessage(role="tool", tool_call_id=call.id, content=reply), seq)
            return False
        if call.name == ASK_USER:
            args = call.arguments or {}
            question = str(args.get("question") or "Could you give me more details?")
            reply = await self.host.ask(
                question, options=clean_options(args.get("options")), answer_schema=clean_schema(args.get("answer_schema"))
            )
            if reply is None:
                return None
            self._add(ChatMessage(role="tool", content=reply, tool_call_id=call.id), seq)
            await self.host.resume_after_answer()
            return False
        self.usage.tool_calls += 1
        agent_type = self.agent_type
        if not allowed(agent_type, call.name):
            self._add(
                ChatMessage(role="tool", tool_call_id=call.id,
                            content=f"error: the {agent_type} agent has no tool named {call.name!r}"),
                seq,
            )
            return False
        try:
            result = await self.workspace.run_tool(call, seq, agent_type)
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            # An infrastructure fault after retries: the model hears about it and goes on.
            self._add(ChatMessage(role="tool", tool_call_id=call.id, content=f"error: the tool failed: {err.cause or err}"), seq)
            return False
        return result.changed_files

    async def _review_plan(self, text: str) -> bool:
        """Keeps the plan as an artifact and parks the task for a person's decision on it (an
        ``approval``); False when the input timeout passes first. ``approve`` ends the planning:
        the next turns run as the task's own agent type, in the same workspace; ``reject`` sends
        the feedback back and the agent revises the plan (a new approval follows)."""
        self.plan_revision += 1
        kept = await self.workspace.keep_plan(text, self.plan_revision)
        self.plan_artifact = kept.artifact
        shown = {**kept.artifact, "content": kept.content[:PLAN_SHOWN_CHARS]}
        reply = await self.host.ask(APPROVAL_PROMPT, kind=ACTION_APPROVAL, artifact=shown)
        if reply is None:
            return False
        state = self.state
        if state.reply_decision == APPROVE:
            self.phase = None
            self._add(ChatMessage(role="user", content=plan_approved_message(self.inp.agent_type, state.reply_message)))
        else:
            self._add(ChatMessage(role="user", content=plan_rejected_message(state.reply_message)))
        await self.host.resume_after_answer()
        return True

    # ---- endings --------------------------------------------------------------------------

    def _unfinalized(self, fin: FinalizeResult | None) -> bool:
        """True when the run ends with a result no finalize activity wrote (the lazy workspace was
        never needed): then the ending record copies the transcript into the conversation."""
        return fin is not None and self.workspace.ws is None

    def _results(self, fin: FinalizeResult | None) -> dict:
        out: dict = {"usage": self.usage.public(), "artifacts": []}
        if fin is not None:
            out.update(changes=fin.changes, git=fin.git, artifacts=fin.artifacts)
        # The approved (or last) plan of a plan-first task stays among its artifacts.
        plan = self.plan_artifact
        if plan is not None and all(a.get("id") != plan.get("id") for a in out["artifacts"]):
            out["artifacts"] = [plan, *out["artifacts"]]
        return out

    async def _complete(self, text: str, result_json: dict | None = None) -> TaskResult:
        if result_json is not None and not text.strip():
            # The object is the answer; its text form keeps `result` useful for text-only steps.
            text = json.dumps(result_json, ensure_ascii=False)
        fin = await self.workspace.finalize(text, publish=True)
        await self.workspace.cleanup()
        r = self._results(fin)
        await self.host.end_run(
            "task.completed",
            TaskChanges(status=TaskStatus.COMPLETED.value, result=text, retry_count=self.state.retry_count,
                        clear_required_action=True, clear_error=True, changes=r.get("changes"), git=r.get("git"),
                        usage=r["usage"], artifacts=r["artifacts"], conversation_from_run=self._unfinalized(fin),
                        result_json=result_json),
        )
        return TaskResult(task_id=self.inp.task_id, run_id=self.inp.run_id, status=TaskStatus.COMPLETED.value, result=text,
                          result_json=result_json)

    async def _stop(self, code: str, message: str) -> TaskResult:
        fin = await self.workspace.finalize(message, publish=False)
        await self.workspace.cleanup()
        return await self._failed(code, message, fin)

    async def _fail_from(self, err: ActivityError) -> TaskResult:
        cause = err.cause
        code, message = ErrorCode.AGENT_ERROR, str(cause or err)
        if isinstance(cause, ApplicationError):
            message = cause.message
            details = cause.details[0] if cause.details else {}
            if isinstance(details, dict):
                code = details.get("code", code)
                self.state.count_attempts(int(details.get("attempt", 1)))
            if cause.type == MODEL_NOT_CONFIGURED:
                code = ErrorCode.MODEL_UNAVAILABLE
        fin = await self.workspace.finalize(message, publish=False) if code == AgentErrorCode.TOKEN_BUDGET else None
        await self.workspace.cleanup()
        return await self._failed(code, message, fin)

    async def _failed(self, code: str, message: str, fin: FinalizeResult | None) -> TaskResult:
        r = self._results(fin)
        await self.host.end_run(
            "task.failed",
            TaskChanges(status=TaskStatus.FAILED.value, error_code=code, error_message=message,
                        retry_count=self.state.retry_count, clear_required_action=True, changes=r.get("changes"),
                        git=r.get("git"), usage=r["usage"], artifacts=r["artifacts"],
                        conversation_from_run=self._unfinalized(fin)),
        )
        return TaskResult(task_id=self.inp.task_id, run_id=self.inp.run_id, status=TaskStatus.FAILED.value,
                          error_code=code, error_message=message)

    def _carry(self) -> TaskInput:
        inp, state, workspace = self.inp, self.state, self.workspace
        return TaskInput(
            task_id=inp.task_id, run_id=inp.run_id, owner_id=inp.owner_id, title=inp.title, description=inp.description,
            agent_type=inp.agent_type, model=inp.model, priority=inp.priority, concurrency_limit=inp.concurrency_limit,
            input_timeout_seconds=inp.input_timeout_seconds, request_id=inp.request_id, codebase_id=inp.codebase_id,
            max_turns=inp.max_turns, output_schema=inp.output_schema, require_approval=inp.require_approval,
            attachments=inp.attachments,
            carried=TaskCarryOver(
                messages=[], pending_messages=state.pending, retry_count=state.retry_count, turns=0, started=True,
                agent=AgentCarry(seq=self.seq, usage=self.usage, workspace=workspace.ws,
                                 checkpoint_id=workspace.checkpoint_id, append=self.append,
                                 invalid_answers=self.invalid_answers, phase=self.phase,
                                 plan_revision=self.plan_revision, plan_artifact=self.plan_artifact),
            ),
        )
