"""Email notifications for tasks created with ``notify_email``.

``EmailNotifier`` is one of the worker's event sinks (composed in ``codetether/worker.py`` ``build_sink``):
after ``task.needs_input`` and after each terminal event (``task.completed``, ``task.failed``,
``task.cancelled``) of such a task it starts an :class:`codetether.notifications.workflow.EmailWorkflow` with the id
``email-<event id>``, so a retried ``record_event`` never sends a second email. The workflow runs
``EmailActivities.send_task_email``, which builds a plain-text message from the event as it was
recorded and hands it to the SMTP server of ``CODETETHER_SMTP_URL``; Temporal retries it on its
retry policy while the server is unreachable or answers 4xx. With a reply secret and
``CODETETHER_INBOUND_EMAIL_DOMAIN`` configured, each email carries ``Reply-To:
reply+<token>@<domain>`` (the token names the task and this event, :mod:`codetether.replies.tokens`), and
the question email also shows the signed ``reply_url``. ``POST /v1/automation/tasks`` refuses
``notify_email`` with 422 ``notify_email_unavailable`` when no SMTP server is configured.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import quote

from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from codetether.core.config import Settings, SmtpServer
from codetether.core.db import Database
from codetether.core.models import Codebase, Task, TaskEvent
from codetether.replies.tokens import reply_address
from codetether.tasks.contracts import ACTION_QUESTION, DECISION_KINDS
from codetether.notifications.contracts import (
    EMAIL_SENT,
    EMAIL_SKIPPED,
    EMAIL_WORKFLOW,
    EmailInput,
    EmailResult,
    email_workflow_id,
)

log = logging.getLogger(__name__)

# The events a notify_email recipient hears about: the task needs them, or it is over.
NOTIFY_EVENTS = frozenset({"task.needs_input", "task.completed", "task.failed", "task.cancelled"})

_VERB = {
    "task.needs_input": "needs your input",
    "task.completed": "completed",
    "task.failed": "failed",
    "task.cancelled": "was cancelled",
}


class EmailNotifier:
    """Event sink: one :class:`codetether.notifications.workflow.EmailWorkflow` per notifying event of a task with
    ``notify_email``. Starting it twice for the same event is a no-op (the id is never reused)."""

    def __init__(self, client: Client, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    async def publish(self, event: TaskEvent, task: Task) -> None:
        if event.type not in NOTIFY_EVENTS or not task.notify_email:
            return
        if self.settings.smtp_url is None:
            # The API refuses notify_email without SMTP; a worker configured differently from the
            # API cannot send, and says so instead of pretending.
            log.warning("task %s wants email for %s but this worker has no CODETETHER_SMTP_URL", task.id, event.id)
            return
        try:
            await self.client.start_workflow(
                EMAIL_WORKFLOW,
                EmailInput(event_id=event.id, task_id=task.id),
                result_type=EmailResult,
                id=email_workflow_id(event.id),
                task_queue=self.settings.temporal_task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            pass


def example_answer(action: dict) -> dict:
    """The body of ``POST …/input`` the email shows for this action."""
    if (action.get("kind") or ACTION_QUESTION) in DECISION_KINDS:
        return {"decision": "approve"}
    if action.get("options"):
        return {"choice": action["options"][0]}
    return {"message": "<your answer>"}


def action_lines(action: dict, replies: bool) -> list[str]:
    """What the email says about a pending action: the question and its options with a link per
    option, or the plan with a link to approve and one to reject (each opens the reply page,
    which asks to confirm), and how to answer by replying."""
    url = action.get("reply_url")
    kind = action.get("kind") or ACTION_QUESTION
    if kind in DECISION_KINDS:
        artifact = action.get("artifact") or {}
        lines = [action.get("prompt") or "The agent waits for your decision.", ""]
        if artifact.get("content"):
            lines += [f"--- {artifact.get('name') or 'plan.md'} ---", artifact["content"].rstrip(), "---", ""]
        if url:
            lines += ["Approve:", "", f"  {url}?decision=approve", "", "Reject (and say what should change):", "",
                      f"  {url}?decision=reject", ""]
        if replies:
            lines += ['Or reply to this email with "approve" or "reject" on the first line; the lines after it',
                      "go to the agent (with a rejection: what should change).", ""]
        return lines
    lines = ["The agent asks:", "", action.get("prompt") or "(no question text)", ""]
    options = action.get("options") or []
    if options:
        lines += ["Choose one:", ""]
        for option in options:
            lines.append(f"  {option}: {url}?choice={quote(option, safe='')}" if url else f"  - {option}")
        lines.append("")
    if replies:
        lines += ["Reply to this email to answer: the text above the quoted message becomes the answer"
                  + (" (an option on its first line chooses it)." if options else "."), ""]
    if url:
        lines += ["Or answer in your browser (no sign-in; the link works once):", "", f"  {url}", ""]
    return lines


def _one_line(text: str, limit: int = 150) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def build_message(
    settings: Settings, event_type: str, payload: dict, recipient: str, reply_to: str | None = None,
    *, pushes: bool = False,
) -> EmailMessage:
    """The plain-text email for one recorded event (``payload`` is the stored event body);
    ``reply_to`` is the signed reply address, when email replies are configured. ``pushes``: the
    task's codebase pushes, so a reply cannot start a run (codetether/replies/inbound_email.py) and
    a result's email offers none."""
    if pushes and event_type != "task.needs_input":
        reply_to = None
    data = payload.get("data") or {}
    task_id = data.get("task_id") or payload.get("task_id")
    title = data.get("title") or task_id
    base = settings.api_base_url.rstrip("/")
    task_url = f"{base}/v1/automation/tasks/{task_id}"
    verb = _VERB.get(event_type, event_type)

    lines = [f'Task "{_one_line(str(title))}" {verb}.', "", f"Task:    {task_id}", f"Status:  {data.get('status')}"]
    if data.get("model"):
        lines.append(f"Model:   {data['model']}")
    if data.get("runtime_seconds") is not None:
        lines.append(f"Runtime: {data['runtime_seconds']} s")
    lines.append("")
    if event_type == "task.needs_input":
        action = data.get("required_action") or {}
        answer = example_answer(action)
        if action.get("id"):
            answer["required_action_id"] = action["id"]
        lines += action_lines(action, reply_to is not None)
        lines += [
            "Answer through the API (the task waits until you do):",
            "",
            f"  POST {task_url}/input",
            f"  {json.dumps(answer)}",
            "",
        ]
    elif event_type == "task.completed":
        summary = data.get("result_summary") or data.get("result")
        lines += ["Result:", "", summary if summary else "(no result text)", ""]
    elif event_type == "task.failed":
        err = data.get("error") or {}
        lines += ["Error:", "", f"{err.get('code', 'error')}: {err.get('message', '')}".rstrip(), ""]
    elif event_type == "task.cancelled":
        err = data.get("error") or {}
        if err.get("message"):
            lines += [f"Reason: {err['message']}", ""]
    if reply_to and event_type != "task.needs_input":
        lines += ["Reply to this email to continue the conversation: your reply starts a follow-up run.", ""]
    elif pushes and event_type != "task.needs_input":
        lines += ["This task's codebase pushes, so it continues only from the console or the API",
                  f"(POST {task_url}/messages), not by email.", ""]
    lines += [f"Details: {task_url}", "", "-- ", "CodeTether sent this because the task was created with notify_email."]

    msg = EmailMessage()
    msg["From"] = settings.email_from
    msg["To"] = recipient
    msg["Subject"] = f'[CodeTether] Task "{_one_line(str(title))}" {verb}'
    msg["Date"] = formatdate(usegmt=True)
    # The event id as Message-ID: if an activity retry resends after a lost acknowledgement,
    # mail systems that deduplicate on Message-ID see the same message.
    msg["Message-ID"] = f"<{payload.get('id')}@codetether>"
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    msg["X-CodeTether-Task-Id"] = str(task_id)
    msg["X-CodeTether-Event"] = event_type
    if reply_to:
        msg["Reply-To"] = reply_to
    msg.set_content("\n".join(lines) + "\n")
    return msg


def _smtp_send(server: SmtpServer, msg: EmailMessage, timeout: float) -> None:
    context = ssl.create_default_context()
    if server.security == "tls":
        conn: smtplib.SMTP = smtplib.SMTP_SSL(server.host, server.port, timeout=timeout, context=context)
    else:
        conn = smtplib.SMTP(server.host, server.port, timeout=timeout)
    with conn:
        if server.security == "starttls":
            conn.starttls(context=context)
        if server.username:
            conn.login(server.username, server.password or "")
        conn.send_message(msg)


def _permanent(err: smtplib.SMTPException) -> bool:
    """5xx answers about the message or its recipient will not change on a retry."""
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _msg in err.recipients.values()]
        return bool(codes) and all(500 <= c < 600 for c in codes)
    if isinstance(err, (smtplib.SMTPSenderRefused, smtplib.SMTPDataError)):
        return 500 <= err.smtp_code < 600
    return False


class EmailActivities:
    def __init__(self, *, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db

    @activity.defn
    async def send_task_email(self, inp: EmailInput) -> EmailResult:
        async with self.db.session() as s:
            event = await s.get(TaskEvent, inp.event_id)
            task = await s.get(Task, inp.task_id)
            codebase = await s.get(Codebase, task.codebase_id) if task is not None and task.codebase_id else None
        if event is None or task is None or not task.notify_email:
            return EmailResult(inp.event_id, EMAIL_SKIPPED)
        server = self.settings.smtp
        if server is None:
            # Retryable: the operator can configure SMTP on the workers and the email still goes.
            raise ApplicationError("no SMTP server is configured (CODETETHER_SMTP_URL)", type="smtp_unconfigured")
        msg = build_message(
            self.settings, event.type, json.loads(event.body), task.notify_email,
            reply_to=reply_address(self.settings, task.id, event.seq),
            pushes=codebase is not None and codebase.push in ("branch", "pull_request"),
        )
        try:
            await asyncio.to_thread(_smtp_send, server, msg, self.settings.smtp_timeout_seconds)
        except smtplib.SMTPException as err:
            raise ApplicationError(
                f"SMTP {type(err).__name__}: {err}", type="smtp_rejected" if _permanent(err) else "smtp_error",
                non_retryable=_permanent(err),
            ) from None
        except OSError as err:
            raise ApplicationError(f"SMTP server unreachable: {err}", type="smtp_unreachable") from None
        log.info("emailed %s about %s (%s)", task.notify_email, task.id, event.type)
        return EmailResult(inp.event_id, EMAIL_SENT, task.notify_email)
