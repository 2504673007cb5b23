"""EmailWorkflow: one notification email for one recorded event of a task with ``notify_email``.

Started by the worker's event sink (``activities/email_notify.EmailNotifier``) with the id
``email-<event id>`` and a reject-duplicate policy, so each event emails at most once even when
``record_event`` is retried. The send is one activity; Temporal retries it with backoff while the
SMTP server is down or answers 4xx, and gives up at once on a permanent 5xx refusal.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from codetether.notifications.activities import EmailActivities
    from codetether.notifications.contracts import EMAIL_WORKFLOW, EmailInput, EmailResult

# One SMTP conversation (socket timeout CODETETHER_SMTP_TIMEOUT_SECONDS, 30 s by default) plus the
# database read before it.
SEND_TIMEOUT = timedelta(seconds=120)
# About a day of retries: 5 s, 10 s, 20 s ... then every 30 minutes.
SEND_RETRY_POLICY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=30),
    maximum_attempts=60,
    non_retryable_error_types=["smtp_rejected"],
)


@workflow.defn(name=EMAIL_WORKFLOW)
class EmailWorkflow:
    @workflow.run
    async def run(self, inp: EmailInput) -> EmailResult:
        return await workflow.execute_activity_method(
            EmailActivities.send_task_email,
            inp,
            start_to_close_timeout=SEND_TIMEOUT,
            retry_policy=SEND_RETRY_POLICY,
        )
