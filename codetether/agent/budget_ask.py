"""Budgets that ask before they stop (CONTRACT §13), for the agent loop inside the task workflow.

When the model-turn activity refuses a turn because it would pass the task's ``max_cost_usd`` or
the user's monthly budget, and the budget's ``on_exhaust`` is ``ask``, the task parks with a
``budget`` action. ``approve`` (optionally with ``answer: {"add_usd": N}``) raises the cap that
stopped it, by N or else by what the refused turn needed, and the turn runs again; ``reject`` ends
the task ``failed`` with ``budget_exceeded``. A partner's sponsorship that stopped it is never
raised by an answer (only the task's own cap is): the turn runs again against the sponsorship as
the partner left it. Helpers take the loop's parts explicitly.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from codetether.agent.activities import AgentActivities
    from codetether.agent.contracts import BUDGET_EXCEEDED, RaiseBudgetInput
    from codetether.agent.host import AgentHost
    from codetether.tasks.contracts import ACTION_BUDGET, APPROVE, TaskInput
    from codetether.tasks.run_state import TaskRunState

BUDGET_ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"add_usd": {"type": "number", "exclusiveMinimum": 0, "maximum": 100000,
                               "description": "How much more may be spent (USD)."}},
    "additionalProperties": False,
}
RAISE_TIMEOUT = timedelta(seconds=30)
RAISE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10))


def budget_refusal(err: ActivityError) -> dict | None:
    """The refusal's details when the turn failed on a budget, else None."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type == BUDGET_EXCEEDED and cause.details:
        details = cause.details[0]
        return details if isinstance(details, dict) else None
    return None


def budget_question(refusal: dict) -> str:
    bound = refusal.get("bound")
    head = f"The next model turn needs about ${refusal.get('needed_usd', 0):.4f}, which would pass "
    used = f"${refusal.get('spent_usd', 0):.4f} of ${refusal.get('limit_usd', 0):.4f} is used."
    if bound == "sponsorship":
        # Approving cannot raise the partner's sponsorship (only the partner can): it tries again.
        return (head + f"the sponsored budget for your account: {used} Approve to try again once it has been "
                "raised, or reject to stop the task.")
    what = "this task's cost limit (max_cost_usd)" if bound == "task" else "your monthly budget"
    return (head + f"{what}: {used} Approve to spend more (answer.add_usd sets how much), or reject to stop "
            "the task.")


async def ask_for_budget(host: AgentHost, state: TaskRunState, inp: TaskInput, refusal: dict) -> bool | None:
    """Parks the task on a ``budget`` action. True: approved and the cap raised; False: rejected;
    None: no answer before the input timeout."""
    reply = await host.ask(budget_question(refusal), kind=ACTION_BUDGET, answer_schema=BUDGET_ANSWER_SCHEMA)
    if reply is None:
        return None
    if state.reply_decision != APPROVE:
        return False
    answer = state.reply_answer if isinstance(state.reply_answer, dict) else {}
    needed = float(refusal.get("needed_usd") or 0)
    room = float(refusal.get("limit_usd") or 0) - float(refusal.get("spent_usd") or 0)
    add = float(answer.get("add_usd") or max(needed - max(room, 0.0), needed * 0.01, 0.0001))
    await workflow.execute_activity_method(
        AgentActivities.raise_budget,
        RaiseBudgetInput(task_id=inp.task_id, owner_id=inp.owner_id, add_usd=add, bound=str(refusal.get("bound"))),
        start_to_close_timeout=RAISE_TIMEOUT,
        retry_policy=RAISE_RETRY,
    )
    await host.resume_after_answer()
    return True
