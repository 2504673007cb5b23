"""Fixtures of the reply-channel tests: the ``settings`` of this directory sign reply links and
reply addresses (a reply secret, a public base URL, an inbound email domain)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller

from codetether.replies.tokens import reply_address
from tests.conftest import make_settings, running_stack
from tests.notifications.test_email import Inbox, _free_port

REPLY_SECRET = "reply-secret-for-tests-0123456789abcdef"
PUBLIC_URL = "https://ct.example.com"
INBOUND_DOMAIN = "reply.ct.example.com"


def reply_settings(temporal_address: str, database_url: str, tmp_path, **overrides):
    values = dict(reply_secret=REPLY_SECRET, public_url=PUBLIC_URL, inbound_email_domain=INBOUND_DOMAIN)
    values.update(overrides)
    return make_settings(temporal_address, database_url, tmp_path, **values)


@pytest.fixture
def settings(temporal_address, database_url, tmp_path):
    return reply_settings(temporal_address, database_url, tmp_path)


def link_path(reply_url: str) -> str:
    """``/r/<token>`` of a reply_url (the tests' API is served in process or on a loopback port)."""
    parts = urlsplit(reply_url)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC_URL, reply_url
    assert parts.path.startswith("/r/") and not parts.query, reply_url
    return parts.path


# ---- email: notification SMTP sink, a stack that mails, provider secrets ----------------------

OWNER = "owner@example.com"
MAILGUN_KEY = "key-mailgun-signing-for-tests"
POSTMARK_SECRET = "postmark-inbound-secret-for-tests"
WAIT = 90
TASKS = "/v1/automation/tasks"


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
    settings = reply_settings(
        temporal_address, database_url, tmp_path,
        smtp_url=f"smtp://127.0.0.1:{port}",
        email_from="CodeTether Tests <robot@codetether.test>",
        mailgun_signing_key=MAILGUN_KEY,
        postmark_inbound_secret=POSTMARK_SECRET,
    )
    async with running_stack(settings, temporal_env.client, db) as s:
        yield s, inbox


async def events(stack, task_id, user) -> list[dict]:
    r = await stack.http.get(f"{TASKS}/{task_id}/events", headers=user.headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]


async def create_notified(stack, user, **body) -> dict:
    """A task whose notification emails go to :data:`OWNER` (by default it asks "Which color?")."""
    body.setdefault("title", "Needs a color")
    body.setdefault("prompt", "Paint it\nASK: Which color?")
    body.setdefault("notify_email", OWNER)
    r = await stack.http.post(TASKS, json=body, headers=user.headers)
    assert r.status_code == 201, r.text
    return r.json()


async def question_address(stack, task_id: str, nth: int = 0) -> str:
    """The Reply-To address of the task's ``nth`` question email (it names that event's seq)."""
    from sqlalchemy import select

    from codetether.core.models import TaskEvent

    async with stack.db.session() as s:
        seqs = (await s.execute(select(TaskEvent.seq).where(
            TaskEvent.task_id == task_id, TaskEvent.type == "task.needs_input").order_by(TaskEvent.seq))).scalars().all()
    return reply_address(stack.settings, task_id, seqs[nth])
