"""DeliveryWorkflow: one event sent durably to one destination (a subscription or a task's own
``webhook_url``).

Started by the worker's event sink (``codetether/webhooks/activities.py``) after every recorded event that
has a destination, by ``POST /v1/webhooks/{id}/deliveries/{dlv}/redeliver`` and by
``POST /v1/webhooks/{id}/test``. Each HTTP attempt is one activity that records its own attempt
row; between attempts the workflow sleeps on a durable timer, so a delivery survives worker and
server restarts and shows in the Temporal UI as ``webhook-<delivery id>``.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from codetether.webhooks.activities import WebhookActivities
    from codetether.webhooks.contracts import (
        ATTEMPT_DELIVERED,
        ATTEMPT_RETRY,
        ATTEMPT_SKIPPED,
        DELIVERY_CANCELLED,
        DELIVERY_DELIVERED,
        DELIVERY_FAILED,
        DELIVERY_WORKFLOW,
        DeliveryAttemptInput,
        DeliveryAttemptResult,
        DeliveryInput,
        DeliveryResult,
        delivery_workflow_id,  # noqa: F401 - re-exported for tests and tools
    )

# One attempt: the HTTP timeout (15 s by default) plus database work around it.
ATTEMPT_TIMEOUT = timedelta(seconds=60)
# Temporal retries an attempt only when the activity itself broke (database down, worker lost);
# HTTP failures are results, recorded and retried on the delivery schedule instead.
ATTEMPT_RETRY_POLICY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=60), maximum_attempts=50
)


@workflow.defn(name=DELIVERY_WORKFLOW)
class DeliveryWorkflow:
    @workflow.run
    async def run(self, inp: DeliveryInput) -> DeliveryResult:
        total = len(inp.schedule) + 1
        attempt = 0
        while True:
            attempt += 1
            planned = None
            if attempt < total:
                base = inp.schedule[attempt - 1]
                spread = workflow.random().uniform(-inp.jitter, inp.jitter) if inp.jitter else 0.0
                planned = max(0.0, base * (1.0 + spread))
            res: DeliveryAttemptResult = await workflow.execute_activity_method(
                WebhookActivities.attempt_delivery,
                DeliveryAttemptInput(delivery_id=inp.delivery_id, attempt=attempt, planned_delay=planned),
                start_to_close_timeout=ATTEMPT_TIMEOUT,
                retry_policy=ATTEMPT_RETRY_POLICY,
            )
            if res.outcome == ATTEMPT_DELIVERED:
                return DeliveryResult(inp.delivery_id, DELIVERY_DELIVERED, attempt)
            if res.outcome == ATTEMPT_SKIPPED:
                return DeliveryResult(inp.delivery_id, DELIVERY_CANCELLED, attempt)
            if res.outcome != ATTEMPT_RETRY or res.next_delay is None:
                # Gone (410) or the last attempt failed.
                return DeliveryResult(inp.delivery_id, DELIVERY_FAILED, attempt)
            if res.next_delay > 0:
                await workflow.sleep(timedelta(seconds=res.next_delay))

