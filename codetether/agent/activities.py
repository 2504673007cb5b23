"""The agent loop's model turn: one model call with the agent type's tools offered.

Runs on the shared task queue (any worker). It writes the messages the workflow adds, reads the
run's transcript from the database (so the conversation never travels through Temporal), calls the
backend and writes the assistant's message at the sequence number the workflow gave it. Built by
``codetether/worker.py``; driven by ``codetether/agent/loop.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from codetether.agent.backends.base import AgentBackend, ProviderError, estimate_tokens
from codetether.agent.backends.factory import preload
from codetether.agent.compaction import fit
from codetether.agent.pricing import turn_cost
from codetether.agent.turns import complete_truthfully
from codetether.tasks.activities import ProgressReporter, _heartbeat_forever, available_model, cached_backend, provider_failure
from codetether.agent.structured import submit_result_tool
from codetether.agent.tools import INLINE_TOOLS, Tool, allowed, tools_for, tools_tokens
from codetether.agent.workspace.toolcalls import ToolCalls
from codetether.agent.catalog import ModelCatalog
from codetether.core.config import Settings
from codetether.core.db import Database
from codetether.tasks.events import EventRecorder
from codetether.agent.transcript import read_messages, write_messages
from codetether.budgets import ledger
from codetether.budgets.service import raise_limits
from codetether.agent.contracts import (
    BUDGET_EXCEEDED,
    TOKEN_BUDGET_EXCEEDED,
    AgentErrorCode,
    ChatMessage,
    ModelTurnInput,
    ModelTurnResult,
    RaiseBudgetInput,
    ToolCall,
    ToolCallInput,
    ToolCallResult,
)

# Output tokens reserved for a turn of a model whose limit is unknown or larger (most turns
# write far less; the settlement keeps what it really cost).
DEFAULT_OUTPUT_ESTIMATE = 4096


class AgentActivities:
    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        recorder: EventRecorder,
        catalog: ModelCatalog,
        http_client: httpx.AsyncClient,
        after_settle: Callable[[str], Awaitable[object]] | None = None,
        after_refusal: Callable[[ledger.BudgetRefused], Awaitable[object]] | None = None,
        tool_calls: ToolCalls | None = None,
        own_queue: str | None = None,
    ) -> None:
        self.settings = settings
        # This process's workspace queue and its tool runner: a turn for a workspace held here
        # runs the leading read-only calls itself (one activity per step instead of two).
        self.tool_calls = tool_calls
        self.own_queue = own_queue
        # Told the owner after each settled charge (the worker wires budget.threshold_reached and
        # sponsorship.threshold_reached), and each refused reservation (sponsorship.exhausted).
        self.after_settle = after_settle
        self.after_refusal = after_refusal
        self.db = db
        self.recorder = recorder
        self.catalog = catalog
        self.http_client = http_client
        self._backends: dict[str, AgentBackend] = {}
        preload()

    def _backend(self, kind: str) -> AgentBackend:
        return cached_backend(self._backends, kind, self.http_client)

    @activity.defn
    async def model_turn(self, inp: ModelTurnInput) -> ModelTurnResult:
        attempt = activity.info().attempt
        spec = available_model(self.catalog, inp.model, attempt)
        if inp.tokens_used >= self.settings.agent_token_budget:
            raise ApplicationError(
                f"the task used {inp.tokens_used} tokens, its budget is {self.settings.agent_token_budget}",
                {"code": AgentErrorCode.TOKEN_BUDGET, "attempt": attempt},
                type=TOKEN_BUDGET_EXCEEDED,
                non_retryable=True,
            )
        reporter = ProgressReporter(self.recorder, inp.task_id, inp.run_id)
        beat = asyncio.create_task(_heartbeat_forever())
        try:
            await write_messages(self.db, inp.task_id, inp.run_id, [(e.seq, e.message) for e in inp.append])
            messages = await read_messages(self.db, inp.run_id, before_seq=inp.seq)
            backend = self._backend(spec.kind)
            tools: list[Tool] = list(tools_for(inp.agent_type))
            if inp.output_schema is not None:
                tools.append(submit_result_tool(inp.output_schema))
            sent, compaction, summary = await fit(backend, spec, messages, tools_tokens(tools), reporter)
            charge = await self._reserve(inp, spec, sent, tools, attempt)
            try:
                done = await complete_truthfully(backend, spec, sent, tools, reporter)
            except BaseException:
                if charge is not None:
                    await ledger.settle(self.db, charge[0], 0.0)
                raise
            if summary is not None:
                # The summarising call is part of this turn's cost.
                done.input_tokens += summary.input_tokens
                done.output_tokens += summary.output_tokens
                done.usage_exact = done.usage_exact and summary.usage_exact
        except ProviderError as err:
            raise provider_failure(err, attempt) from None
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
        cost = turn_cost(spec, input_tokens=done.input_tokens, output_tokens=done.output_tokens,
                         cached_input_tokens=done.cached_input_tokens) if done.usage_exact else None
        if charge is not None:
            # Estimated counts keep the reservation: the ledger never counts less than was risked.
            await ledger.settle(self.db, charge[0], cost if cost is not None else charge[1],
                                done.input_tokens, done.output_tokens)
            if self.after_settle is not None:
                await self.after_settle(inp.owner_id)
        calls = list(done.tool_calls)
        for i, call in enumerate(calls):
            if not call.id:
                call.id = f"call_{inp.seq}_{i}"
        assistant = ChatMessage(role="assistant", content=done.text, tool_calls=calls,
                                provider_data=_with_compaction(done.provider_data, compaction))
        ran, outputs = await self._run_inline(inp, calls)
        # The answer and the outputs of the calls run here: one write, so a retry finds all or none.
        await write_messages(self.db, inp.task_id, inp.run_id, [(inp.seq, assistant), *outputs])
        return ModelTurnResult(
            kind="tools" if calls else "final",
            text=done.text,
            tool_calls=calls,
            input_tokens=done.input_tokens,
            output_tokens=done.output_tokens,
            attempt=attempt,
            cached_input_tokens=done.cached_input_tokens,
            reasoning_tokens=done.reasoning_tokens,
            cost_usd=cost,
            tool_results=ran,
        )

    async def _run_inline(
        self, inp: ModelTurnInput, calls: list[ToolCall]
    ) -> tuple[list[ToolCallResult], list[tuple[int, ChatMessage]]]:
        """Runs the leading read-only calls (``INLINE_TOOLS``) when the run's workspace is on this
        worker; the rest (and everything after the first other call, which may change what a later
        read sees) is left to the workflow. Results go to the transcript at the seqs the workflow
        gives the calls (the turn's seq + 1 + index), so a retry of the turn rewrites them."""
        ws = inp.workspace
        if ws is None or self.tool_calls is None or ws.task_queue != self.own_queue or not os.path.isdir(ws.path):
            return [], []
        ran: list[ToolCallResult] = []
        outputs: list[tuple[int, ChatMessage]] = []
        for i, call in enumerate(calls):
            if call.name not in INLINE_TOOLS or not allowed(inp.agent_type, call.name):
                break
            seq = inp.seq + 1 + i
            result, message = await self.tool_calls.execute(ToolCallInput(
                task_id=inp.task_id, run_id=inp.run_id, owner_id=inp.owner_id, agent_type=inp.agent_type,
                workspace=ws, call=call, seq=seq,
            ))
            ran.append(result)
            outputs.append((seq, message))
        return ran, outputs

    @activity.defn
    async def raise_budget(self, inp: RaiseBudgetInput) -> None:
        await raise_limits(self.db, self.settings, inp.task_id, inp.owner_id, inp.add_usd, inp.bound)

    async def _reserve(self, inp: ModelTurnInput, spec, sent, tools, attempt: int) -> tuple[str, float] | None:
        """Reserves the turn's priced estimate (the request's size in, the model's output limit
        out); None when the model has no price (no cap can apply). Refusals end the turn."""
        est_in = estimate_tokens("".join(m.content for m in sent)) + tools_tokens(tools)
        est_out = min(spec.max_output_tokens or DEFAULT_OUTPUT_ESTIMATE, DEFAULT_OUTPUT_ESTIMATE)
        amount = turn_cost(spec, input_tokens=est_in, output_tokens=est_out)
        if not amount:
            return None
        try:
            # One charge per turn (run and transcript seq), whichever attempt runs it.
            turn_key = f"{inp.task_id}:{inp.run_id}:{inp.seq}"
            return await ledger.reserve(self.db, self.settings, inp.task_id, inp.owner_id, spec.name, amount,
                                        turn_key=turn_key), amount
        except ledger.BudgetRefused as refused:
            if self.after_refusal is not None:
                # Before the refusal ends the turn; a failure here retries the turn, which is
                # refused (and published, under the same event id) again.
                await self.after_refusal(refused)
            raise ApplicationError(
                str(refused),
                {"code": AgentErrorCode.BUDGET, "attempt": attempt, "bound": refused.bound,
                 "on_exhaust": refused.on_exhaust, "limit_usd": refused.limit_usd,
                 "spent_usd": round(refused.spent_usd, 10), "needed_usd": round(refused.needed_usd, 10)},
                type=BUDGET_EXCEEDED,
                non_retryable=True,
            ) from None


def _with_compaction(provider_data: dict | None, compaction: dict | None) -> dict | None:
    """The turn's message carries the summary that replaced the run's older messages, if any."""
    if compaction is None:
        return provider_data
    return {**(provider_data or {}), "compaction": compaction}
