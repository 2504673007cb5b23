"""notify_email end to end: a real SMTP server on loopback receives exactly one plain-text email
per needs_input and per terminal event; without SMTP the field is refused; without the field
nothing is sent."""

from __future__ import annotations

import asyncio
import socket
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from temporalio.service import RPCError, RPCStatusCode

from codetether.notifications.activities import EmailNotifier, email_workflow_id
from codetether.core.models import Task, TaskEvent
from tests.conftest import make_settings, running_stack, wait_status
from codetether.notifications.contracts import EmailResult

MAIL_TIMEOUT = 90
NOTIFY = {"task.needs_input", "task.completed", "task.failed", "task.cancelled"}


class Inbox:
    """aiosmtpd handler: every accepted message lands on an asyncio queue of the test's loop."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.queue: asyncio.Queue[tuple[list[str], EmailMessage]] = asyncio.Queue()

    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.content, policy=policy.default)
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (list(envelope.rcpt_tos), msg))
        return "250 OK"

    async def next(self) -> tuple[list[str], EmailMessage]:
        return await asyncio.wait_for(self.queue.get(), timeout=MAIL_TIMEOUT)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_inbox():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


@pytest_asyncio.fixture
async def mail_stack(smtp_inbox, temporal_address, database_url, tmp_path, temporal_env, db):
    inbox, port = smtp_inbox
    inbox.loop = asyncio.get_running_loop()
    settings = make_settings(
        temporal_address, database_url, tmp_path,
        smtp_url=f"smtp://127.0.0.1:{port}",
        email_from="CodeTether Tests <robot@codetether.test>",
        public_url="https://ct.example.com",
    )
    async with running_stack(settings, temporal_env.client, db) as s:
        yield s, inbox


async def _events(stack, task_id: str, headers: dict) -> list[dict]:
    r = await stack.http.get(f"/v1/automation/tasks/{task_id}/events", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]


async def _email_workflows_settled(stack, events: list[dict]) -> None:
    """Each notifying event has finished its email workflow; no other event has one."""
    for ev in events:
        handle = stack.client.get_workflow_handle(email_workflow_id(ev["id"]), result_type=EmailResult)
        if ev["event"] in NOTIFY:
            result = await asyncio.wait_for(handle.result(), timeout=MAIL_TIMEOUT)
            assert result.outcome == "sent", (ev, result)
        else:
            with pytest.raises(RPCError) as err:
                await handle.describe()
            assert err.value.status == RPCStatusCode.NOT_FOUND, ev


def _text(msg: EmailMessage) -> str:
    assert not msg.is_multipart() and msg.get_content_type() == "text/plain"
    assert msg["Reply-To"] is None
    return msg.get_content()


async def test_needs_input_and_completion_each_send_one_email(mail_stack, user):
    stack, inbox = mail_stack
    r = await stack.http.post(
        "/v1/automation/tasks",
        json={"title": "Needs a color", "prompt": "Paint it\nASK: Which color?", "notify_email": "owner@example.com"},
        headers=user.headers,
    )
    assert r.status_code == 201, r.text
    task_id = r.json()["task_id"]

    rcpt, msg = await inbox.next()
    assert rcpt == ["owner@example.com"]
    assert msg["To"] == "owner@example.com"
    assert msg["From"] == "CodeTether Tests <robot@codetether.test>"
    assert msg["Subject"] == '[CodeTether] Task "Needs a color" needs your input'
    body = _text(msg)
    waiting = await wait_status(stack.http, task_id, user.headers, {"needs_input"}, timeout=MAIL_TIMEOUT)
    action = waiting["required_action"]
    assert "Which color?" in body
    assert f"POST https://ct.example.com/v1/automation/tasks/{task_id}/input" in body
    assert f'"required_action_id": "{action["id"]}"' in body
    assert f"https://ct.example.com/v1/automation/tasks/{task_id}" in body
    assert "Status:  needs_input" in body

    r = await stack.http.post(f"/v1/automation/tasks/{task_id}/input", json={"message": "Blue"}, headers=user.headers)
    assert r.status_code == 200, r.text
    done = await wait_status(stack.http, task_id, user.headers, {"completed", "failed"}, timeout=MAIL_TIMEOUT)
    assert done["status"] == "completed", done

    rcpt, msg = await inbox.next()
    assert rcpt == ["owner@example.com"]
    assert msg["Subject"] == '[CodeTether] Task "Needs a color" completed'
    body = _text(msg)
    assert "Status:  completed" in body
    assert done["result_summary"] in body
    assert f"https://ct.example.com/v1/automation/tasks/{task_id}" in body
    assert "/input" not in body

    # Exactly those two: every notifying event's email workflow has finished, and no other event
    # (created, queued, started, progress) has one.
    await stack.client.get_workflow_handle(task_id).result()
    events = await _events(stack, task_id, user.headers)
    assert [e["event"] for e in events if e["event"] in NOTIFY] == ["task.needs_input", "task.completed"]
    await _email_workflows_settled(stack, events)
    assert inbox.queue.empty()

    # A retried record_event publishes the same event again: no second email.
    completed = next(e for e in events if e["event"] == "task.completed")
    async with stack.db.session() as s:
        event_row = await s.get(TaskEvent, completed["id"])
        task_row = await s.get(Task, task_id)
    await EmailNotifier(stack.client, stack.settings).publish(event_row, task_row)
    await _email_workflows_settled(stack, events)
    assert inbox.queue.empty()


async def test_failed_and_cancelled_tasks_send_one_email_each(mail_stack, user):
    stack, inbox = mail_stack
    r = await stack.http.post(
        "/v1/automation/tasks",
        json={"title": "Doomed", "prompt": "FAIL: the model refused", "notify_email": "ops@example.com"},
        headers=user.headers,
    )
    assert r.status_code == 201, r.text
    failed_id = r.json()["task_id"]
    rcpt, msg = await inbox.next()
    assert rcpt == ["ops@example.com"]
    assert msg["Subject"] == '[CodeTether] Task "Doomed" failed'
    failed = await wait_status(stack.http, failed_id, user.headers, {"failed"}, timeout=MAIL_TIMEOUT)
    body = _text(msg)
    assert "Status:  failed" in body
    assert f"{failed['error']['code']}: {failed['error']['message']}" in body

    r = await stack.http.post(
        "/v1/automation/tasks",
        json={"title": "Too slow", "prompt": "SLEEP: 600", "notify_email": "ops@example.com"},
        headers=user.headers,
    )
    assert r.status_code == 201, r.text
    slow_id = r.json()["task_id"]
    await wait_status(stack.http, slow_id, user.headers, {"running"}, timeout=MAIL_TIMEOUT)
    r = await stack.http.delete(f"/v1/automation/tasks/{slow_id}", headers=user.headers)
    assert r.status_code in (200, 202), r.text
    rcpt, msg = await inbox.next()
    assert rcpt == ["ops@example.com"]
    assert msg["Subject"] == '[CodeTether] Task "Too slow" was cancelled'
    assert "Status:  cancelled" in _text(msg)

    for task_id in (failed_id, slow_id):
        events = await _events(stack, task_id, user.headers)
        await _email_workflows_settled(stack, events)
    assert inbox.queue.empty()


async def test_no_email_without_notify_email(mail_stack, user):
    stack, inbox = mail_stack
    r = await stack.http.post(
        "/v1/automation/tasks",
        json={"title": "Quiet", "prompt": "Paint it\nASK: Which color?"},
        headers=user.headers,
    )
    assert r.status_code == 201, r.text
    task_id = r.json()["task_id"]
    await wait_status(stack.http, task_id, user.headers, {"needs_input"}, timeout=MAIL_TIMEOUT)
    r = await stack.http.post(f"/v1/automation/tasks/{task_id}/input", json={"message": "Red"}, headers=user.headers)
    assert r.status_code == 200, r.text
    # The workflow ends after its last record_event (and so its last publish) returned.
    await stack.client.get_workflow_handle(task_id).result()
    events = await _events(stack, task_id, user.headers)
    assert {"task.needs_input", "task.completed"} <= {e["event"] for e in events}
    for ev in events:
        with pytest.raises(RPCError) as err:
            await stack.client.get_workflow_handle(email_workflow_id(ev["id"])).describe()
        assert err.value.status == RPCStatusCode.NOT_FOUND
    assert inbox.queue.empty()


async def test_notify_email_refused_without_smtp(stack, user):
    assert stack.settings.smtp_url is None
    r = await stack.http.post(
        "/v1/automation/tasks",
        json={"title": "Tell me", "description": "x", "model": "demo", "notify_email": "owner@example.com"},
        headers=user.headers,
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["code"] == "notify_email_unavailable"
    assert [e["field"] for e in problem["errors"]] == ["notify_email"]
    r = await stack.http.get("/v1/automation/tasks", headers=user.headers)
    assert r.status_code == 200 and r.json()["data"] == []


def test_smtp_url_parsing():
    from codetether.core.config import Settings

    s = Settings(smtp_url="smtp+starttls://mailer%40acme.com:p%40ss@smtp.acme.com")
    assert (s.smtp.host, s.smtp.port, s.smtp.security) == ("smtp.acme.com", 587, "starttls")
    assert (s.smtp.username, s.smtp.password) == ("mailer@acme.com", "p@ss")
    assert Settings(smtp_url="smtps://smtp.acme.com").smtp.port == 465
    assert Settings(smtp_url="smtp://127.0.0.1:2525").smtp.security == "none"
    assert Settings(smtp_url="").smtp is None
    with pytest.raises(ValueError):
        Settings(smtp_url="https://smtp.acme.com")
