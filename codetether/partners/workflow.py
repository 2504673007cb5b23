"""GuessWorkflow: one guess of ``POST /v1/partner/guess``, run while the route waits.

The route executes it (``client.execute_workflow`` with the id ``guess-<suggestion id>`` and an
execution timeout of ``CODETETHER_GUESS_TIMEOUT_SECONDS``); its one activity asks the guessing
model (``codetether/partners/activities.py``). A transient provider failure is retried a couple
of times within the route's wait; anything else fails the guess at once.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from codetether.partners.activities import GuessActivities
    from codetether.partners.contracts import GUESS_WORKFLOW, GuessAnswer, GuessInput

# One model call that writes a small object.
GUESS_CALL_TIMEOUT = timedelta(seconds=45)
GUESS_RETRY_POLICY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=3,
)


@workflow.defn(name=GUESS_WORKFLOW)
class GuessWorkflow:
    @workflow.run
    async def run(self, inp: GuessInput) -> GuessAnswer:
        return await workflow.execute_activity_method(
            GuessActivities.guess_task,
            inp,
            start_to_close_timeout=GUESS_CALL_TIMEOUT,
            retry_policy=GUESS_RETRY_POLICY,
        )
