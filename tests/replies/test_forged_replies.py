"""Second probe, M1 and L7: forged email replies ran the agent.

Inbound email trusted ``From:``; a reply address never expired and answered any number of times,
so one leaked notification let a stranger answer the question, start run after run, and (had the
codebase pushed) push with the owner's credentials. And a Mailgun post could be sent again, or
carry a timestamp from the future. Now:

- the SMTP listener (in process here, with a resolver of the test serving a DKIM key made here
  and SPF records) takes a reply only from an authenticated sender: DKIM aligned with ``From:``,
  or SPF for the connecting host and an aligned ``MAIL FROM``;
- a question's address answers that question once; a result's address is used once;
- an address older than ``CODETETHER_REPLY_EMAIL_TTL_SECONDS`` does nothing;
- no email starts a run of a task whose codebase pushes;
- a Mailgun signature counts once, and a timestamp from the future is refused.
"""

from __future__ import annotations

import asyncio
import smtplib
import time
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
import pytest_asyncio
from sqlalchemy import select, update

from codetether.core.ids import new_id, utcnow
from codetether.core.models import Codebase, Task, TaskEvent
from codetether.replies.inbound_smtp import start_server
from codetether.replies.tokens import reply_address
from tests.conftest import wait_status
from tests.notifications.test_email import _free_port
from tests.replies.conftest import OWNER, TASKS, WAIT
from tests.replies.conftest import create_notified as _create
from tests.replies.conftest import events as _events
from tests.replies.conftest import question_address as _question_address
from tests.replies.mailauth import FakeDns, MailDomain
from tests.replies.test_inbound_webhooks import _mailgun_form

SPF_SENDER = "olive@spf.example.org"
LOG = "codetether.inbound_email"


@pytest.fixture(scope="module")
def owner_domain() -> MailDomain:
    assert OWNER.endswith("@example.com")
    return MailDomain("example.com")


@pytest.fixture(scope="module")
def evil_domain() -> MailDomain:
    return MailDomain("evil.net")


@pytest_asyncio.fixture
async def listener(mail_stack, owner_domain, evil_domain):
    stack, _inbox = mail_stack
    dns = FakeDns(owner_domain, evil_domain, spf={
        "example.com": "v=spf1 ip4:192.0.2.7 -all",  # example.com does not send from loopback
        "spf.example.org": "v=spf1 ip4:127.0.0.1 -all",
    })
    port = _free_port()
    server = await start_server(stack.settings, stack.db, stack.client, "127.0.0.1", port, txt_lookup=dns)
    try:
        yield port
    finally:
        server.close()
        await server.wait_closed()


def _reply(to: str, text: str, sender: str = OWNER) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Olive <{sender}>"
    msg["To"] = to
    msg["Subject"] = "Re: Which color?"
    msg["Message-ID"] = make_msgid(domain=sender.split("@")[1])
    msg.set_content(text + "\n")
    return msg


async def _send(port: int, to: str, raw: bytes, mail_from: str = OWNER) -> None:
    def send() -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as conn:
            conn.sendmail(mail_from, [to], raw)

    await asyncio.to_thread(send)


def _outcomes(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOG]


async def _messages(stack, task_id, user) -> list[dict]:
    return [e for e in await _events(stack, task_id, user) if e["event"] == "task.message"]


async def test_forged_senders_are_refused_and_a_question_is_answered_once(
        mail_stack, listener, user, owner_domain, evil_domain, caplog):
    stack, _inbox = mail_stack
    caplog.set_level("INFO", logger=LOG)
    task = await _create(stack, user)
    task_id = task["task_id"]
    await wait_status(stack.http, task_id, user.headers, {"needs_input"}, timeout=WAIT)
    address = await _question_address(stack, task_id)

    # The probe's forgery: the owner's address in From:, sent from a host example.com does not use.
    await _send(listener, address, _reply(address, "Mallory says black.").as_bytes())
    assert any(f"to task {task_id} from {OWNER}: unauthenticated_sender" in m for m in _outcomes(caplog))
    # Signed, but by the forger's own domain; and the forger's key claiming the owner's domain.
    await _send(listener, address, evil_domain.sign(_reply(address, "Evil black.")), mail_from="x@evil.net")
    await _send(listener, address, evil_domain.sign(_reply(address, "Evil black."), domain="example.com"))
    assert len([m for m in _outcomes(caplog) if "unauthenticated_sender" in m]) == 3
    assert (await stack.http.get(f"{TASKS}/{task_id}", headers=user.headers)).json()["status"] == "needs_input"
    assert not await _messages(stack, task_id, user)

    # The owner's own, DKIM-signed reply answers.
    await _send(listener, address, owner_domain.sign(_reply(address, "Sea green.")))
    assert any(f"to task {task_id} delivered: answered (sender dkim)" in m for m in _outcomes(caplog))
    done = await wait_status(stack.http, task_id, user.headers, {"completed"}, timeout=WAIT)
    assert done["result"].startswith("Thanks, noted: Sea green.")
    # The same question's address again, genuinely signed: the question was answered.
    await _send(listener, address, owner_domain.sign(_reply(address, "Actually red.")))
    assert any(f"to task {task_id} from {OWNER}: stale_question" in m for m in _outcomes(caplog))
    assert [m["message"]["text"] for m in await _messages(stack, task_id, user)] == ["Sea green."]

    # SPF: the sender's domain permits the connecting host and MAIL FROM aligns with From:.
    other = await _create(stack, user, notify_email=SPF_SENDER)
    await wait_status(stack.http, other["task_id"], user.headers, {"needs_input"}, timeout=WAIT)
    address = await _question_address(stack, other["task_id"])
    await _send(listener, address, _reply(address, "Teal.", sender=SPF_SENDER).as_bytes(), mail_from=SPF_SENDER)
    assert any(f"to task {other['task_id']} delivered: answered (sender spf)" in m for m in _outcomes(caplog))
    await wait_status(stack.http, other["task_id"], user.headers, {"completed"}, timeout=WAIT)


async def _result_address(stack, task_id: str) -> str:
    async with stack.db.session() as s:
        seq = (await s.execute(select(TaskEvent.seq).where(
            TaskEvent.task_id == task_id, TaskEvent.type == "task.completed").order_by(TaskEvent.seq))).scalars().first()
    return reply_address(stack.settings, task_id, seq)


async def _mailgun(stack, form: dict):
    return await stack.http.post("/v1/inbound/email/mailgun", data=form)


async def test_result_addresses_are_single_use_expire_and_never_start_a_pushing_run(mail_stack, user):
    stack, _inbox = mail_stack
    first = await _create(stack, user, title="Paints", prompt="Paint it")
    expired = await _create(stack, user, title="Old", prompt="Paint it")
    pushing = await _create(stack, user, title="Builds", prompt="Paint it")
    for t in (first, expired, pushing):
        await wait_status(stack.http, t["task_id"], user.headers, {"completed"}, timeout=WAIT)

    # L7: the same signed post twice. The second does nothing.
    address = await _result_address(stack, first["task_id"])
    form = _mailgun_form(address, "Also the door.")
    r = await _mailgun(stack, form)
    assert r.status_code == 200 and r.json() == {"delivered": True, "outcome": "follow_up"}, r.text
    assert (await _mailgun(stack, form)).json() == {"delivered": False, "outcome": "replayed"}
    await wait_status(stack.http, first["task_id"], user.headers, {"completed"}, timeout=WAIT)
    # A fresh post to the used address: refused, no third run.
    r = await _mailgun(stack, _mailgun_form(address, "And the fence."))
    assert r.json() == {"delivered": False, "outcome": "used_address"}
    follow_ups = [m for m in await _messages(stack, first["task_id"], user) if m["message"]["kind"] == "follow_up"]
    assert [m["message"]["text"] for m in follow_ups] == ["Also the door."]
    # L7: a timestamp from the future is refused; within a small clock difference it is not.
    assert (await _mailgun(stack, _mailgun_form(address, "x", timestamp=int(time.time()) + 3600))).status_code == 401
    assert (await _mailgun(stack, _mailgun_form(address, "x", timestamp=int(time.time()) + 20))).status_code == 200

    # An address whose email is older than the reply lifetime (7 days) does nothing.
    address = await _result_address(stack, expired["task_id"])
    async with stack.db.session() as s:
        await s.execute(update(TaskEvent).where(TaskEvent.task_id == expired["task_id"])
                        .values(created_at=utcnow() - timedelta(days=8)))
        await s.commit()
    r = await _mailgun(stack, _mailgun_form(address, "Paint it again."))
    assert r.json() == {"delivered": False, "outcome": "expired_address"}

    # A task whose codebase pushes: an email does not start a run, the owner does.
    async with stack.db.session() as s:
        cb = Codebase(id=new_id("cb"), user_id=user.user_id, name="billing", push="branch",
                      repository_url="https://git.example.com/billing.git")
        s.add(cb)
        await s.flush()
        await s.execute(update(Task).where(Task.id == pushing["task_id"]).values(codebase_id=cb.id))
        await s.commit()
    address = await _result_address(stack, pushing["task_id"])
    r = await _mailgun(stack, _mailgun_form(address, "BASH: git push --force"))
    assert r.json() == {"delivered": False, "outcome": "confirmation_required"}
    state = (await stack.http.get(f"{TASKS}/{pushing['task_id']}", headers=user.headers)).json()
    assert state["status"] == "completed" and state["run_id"] == pushing["run_id"]
    # Refused ones do not use the address up: the push rule still answers, not "used".
    assert (await _mailgun(stack, _mailgun_form(address, "again"))).json()["outcome"] == "confirmation_required"


async def test_provider_verdicts_against_a_forged_sender(mail_stack, user):
    stack, _inbox = mail_stack
    task = await _create(stack, user)
    await wait_status(stack.http, task["task_id"], user.headers, {"needs_input"}, timeout=WAIT)
    address = await _question_address(stack, task["task_id"])
    for spf in ("Fail", "SoftFail", "Neutral", ""):
        r = await _mailgun(stack, _mailgun_form(address, "Black.", spf=spf))
        assert r.json() == {"delivered": False, "outcome": "unauthenticated_sender"}, spf
    # Postmark without its verdict headers, or with forged ones below its own.
    import base64

    from tests.replies.conftest import POSTMARK_SECRET
    auth = {"Authorization": "Basic " + base64.b64encode(f"p:{POSTMARK_SECRET}".encode()).decode()}
    body = {"From": OWNER, "FromFull": {"Email": OWNER}, "OriginalRecipient": address, "TextBody": "Black.",
            "Headers": [{"Name": "Received-SPF", "Value": "SoftFail"}, {"Name": "X-Spam-Tests", "Value": "none"},
                        {"Name": "Received-SPF", "Value": "Pass"}, {"Name": "X-Spam-Tests", "Value": "DKIM_VALID_AU"},
                        {"Name": "Return-Path", "Value": f"<{OWNER}>"}]}
    r = await stack.http.post("/v1/inbound/email/postmark", json=body, headers=auth)
    assert r.json() == {"delivered": False, "outcome": "unauthenticated_sender"}, r.text
    assert (await stack.http.get(f"{TASKS}/{task['task_id']}", headers=user.headers)).json()["status"] == "needs_input"


def test_a_pushing_tasks_result_email_offers_no_reply_address(settings):
    from codetether.notifications.activities import build_message

    payload = {"id": "evt_1", "data": {"task_id": "task_01", "title": "Builds", "status": "completed", "result": "ok"}}
    address = "reply+abc@reply.ct.example.com"
    plain = build_message(settings, "task.completed", payload, OWNER, reply_to=address)
    assert plain["Reply-To"] == address and "starts a follow-up run" in plain.get_content()
    pushing = build_message(settings, "task.completed", payload, OWNER, reply_to=address, pushes=True)
    assert pushing["Reply-To"] is None
    assert "continues only from the console or the API" in pushing.get_content()
    # Its question still takes an answer by email: that run was started by the owner.
    asked = {"id": "evt_2", "data": {**payload["data"], "status": "needs_input", "required_action": {"prompt": "Q?"}}}
    assert build_message(settings, "task.needs_input", asked, OWNER, reply_to=address, pushes=True)["Reply-To"]
