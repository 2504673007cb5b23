"""Email reply-to continuation over real SMTP on loopback.

The stack sends its notification emails to an aiosmtpd sink; replies go to a real
``codetether inbound-smtp`` process (a subprocess on a free port, same database and Temporal
server as the test's worker). A reply with a quoted original and a signature answers the question
with only its new text; a reply to the completion email starts a follow-up run; a wrong sender, a
forged token, an automatic reply and an oversized message do nothing and say so in the log. The
Mailgun and Postmark webhooks are checked with good and bad signatures.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller

from core.replytokens import reply_address
from tests.conftest import running_stack, wait_status
from tests.notifications.test_email import Inbox, _free_port
from tests.replies.conftest import INBOUND_DOMAIN, reply_settings

TASKS = "/v1/automation/tasks"
OWNER = "owner@example.com"
MAILGUN_KEY = "key-mailgun-signing-for-tests"
POSTMARK_SECRET = "postmark-inbound-secret-for-tests"
MAX_BYTES = 64 * 1024
WAIT = 90


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


class InboundProcess:
    def __init__(self, port: int, log_path: Path, proc: subprocess.Popen) -> None:
        self.port, self.log_path, self.proc = port, log_path, proc

    def log(self) -> str:
        return self.log_path.read_text()

    async def wait_log(self, needle: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while needle not in self.log():
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} never logged:\n{self.log()}")
            await asyncio.sleep(0.1)
        return self.log()

    def send(self, msg: EmailMessage, *, mail_from: str | None = None, to: list[str] | None = None) -> None:
        with smtplib.SMTP("127.0.0.1", self.port, timeout=60) as conn:
            conn.send_message(msg, from_addr=mail_from, to_addrs=to)


@pytest_asyncio.fixture
async def inbound(mail_stack, tmp_path):
    stack, _inbox = mail_stack
    s = stack.settings
    port = _free_port()
    env = {
        **os.environ,
        "CODETETHER_DATA_DIR": str(tmp_path),
        "CODETETHER_DATABASE_URL": s.resolved_database_url,
        "CODETETHER_TEMPORAL_ADDRESS": s.temporal_address,
        "CODETETHER_TEMPORAL_TASK_QUEUE": s.temporal_task_queue,
        "CODETETHER_REPLY_SECRET": s.reply_secret,
        "CODETETHER_INBOUND_EMAIL_DOMAIN": INBOUND_DOMAIN,
        "CODETETHER_INBOUND_EMAIL_MAX_BYTES": str(MAX_BYTES),
        "CODETETHER_PUBLIC_URL": s.public_url,
    }
    log_path = tmp_path / "inbound-smtp.log"
    log = log_path.open("w")
    exe = Path(sys.executable).parent / "codetether"
    proc = subprocess.Popen([str(exe), "inbound-smtp", "--port", str(port)], cwd=tmp_path, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            if proc.poll() is not None:
                raise AssertionError(f"inbound-smtp exited: {log_path.read_text()}")
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=2) as probe:
                    probe.noop()
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"inbound-smtp did not listen: {log_path.read_text()}")
        yield InboundProcess(port, log_path, proc)
    finally:
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _reply_to(original: EmailMessage, body: str, *, sender: str = OWNER, **headers: str) -> EmailMessage:
    """A reply the way mail clients write it: new text, a signature, then the quoted original."""
    msg = EmailMessage()
    msg["From"] = f"Olive Owner <{sender}>"
    msg["To"] = original["Reply-To"]
    msg["Subject"] = "Re: " + original["Subject"]
    msg["Message-ID"] = make_msgid(domain="example.com")
    msg["In-Reply-To"] = original["Message-ID"]
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    quoted = "\n".join("> " + line for line in original.get_content().splitlines())
    msg.set_content(
        f"{body}\n\nThanks,\nOlive\n--\nOlive Owner | Example Corp\n+1 555 0100\n\n"
        f"On Wed, Dec 2, 2026 at 9:00 AM CodeTether Tests <robot@codetether.test> wrote:\n{quoted}\n"
    )
    return msg


async def _events(stack, task_id, user) -> list[dict]:
    r = await stack.http.get(f"{TASKS}/{task_id}/events", headers=user.headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]


async def _create(stack, user, **body) -> dict:
    body.setdefault("title", "Needs a color")
    body.setdefault("prompt", "Paint it\nASK: Which color?")
    body.setdefault("notify_email", OWNER)
    r = await stack.http.post(TASKS, json=body, headers=user.headers)
    assert r.status_code == 201, r.text
    return r.json()


@pytest.mark.postgres
async def test_reply_answers_then_reply_to_the_result_starts_a_follow_up(mail_stack, inbound, user):
    stack, inbox = mail_stack
    task = await _create(stack, user)
    task_id = task["task_id"]
    _rcpt, asked = await inbox.next()
    waiting = await wait_status(stack.http, task_id, user.headers, {"needs_input"}, timeout=WAIT)
    assert asked["Reply-To"].startswith("reply+") and asked["Reply-To"].endswith("@" + INBOUND_DOMAIN)
    assert len(asked["Reply-To"].split("@")[0]) <= 64
    body = asked.get_content()
    assert "Reply to this email to answer" in body
    assert waiting["required_action"]["reply_url"] in body

    await asyncio.to_thread(inbound.send, _reply_to(asked, "Sea green, please."), mail_from=OWNER)
    done = await wait_status(stack.http, task_id, user.headers, {"completed", "failed"}, timeout=WAIT)
    assert done["status"] == "completed", done
    # Only the new text reached the agent (the demo model echoes the tool result).
    assert done["result"].startswith("Thanks, noted: Sea green, please.")
    assert "Olive" not in done["result"] and "wrote:" not in done["result"]
    events = await _events(stack, task_id, user)
    [msg] = [e for e in events if e["event"] == "task.message"]
    assert msg["message"] == {"kind": "reply", "via": "email", "from": OWNER,
                              "required_action_id": waiting["required_action"]["id"], "text": "Sea green, please."}
    assert "delivered: answered" in inbound.log()

    _rcpt, result_mail = await inbox.next()
    assert result_mail["Subject"].endswith("completed")
    assert result_mail["Reply-To"].startswith("reply+") and result_mail["Reply-To"] != asked["Reply-To"]
    assert "starts a follow-up run" in result_mail.get_content()
    await asyncio.to_thread(inbound.send, _reply_to(result_mail, "Now paint the door too.\nASK: Which door?"),
                            mail_from=OWNER)
    await inbound.wait_log("delivered: follow_up")
    again = await wait_status(stack.http, task_id, user.headers, {"needs_input"}, timeout=WAIT)
    assert again["run_id"] != task["run_id"]
    assert again["required_action"]["prompt"] == "Which door?"
    events = await _events(stack, task_id, user)
    follow = [e for e in events if e["event"] == "task.message" and e["message"]["kind"] == "follow_up"]
    assert len(follow) == 1
    assert follow[0]["message"]["via"] == "email" and follow[0]["message"]["from"] == OWNER
    assert follow[0]["message"]["text"] == "Now paint the door too.\nASK: Which door?"
    assert follow[0]["run_id"] == again["run_id"]
    assert len([e for e in events if e["event"] == "task.started"]) == 2


async def test_wrong_sender_forged_token_auto_reply_and_oversize_do_nothing(mail_stack, inbound, user):
    stack, inbox = mail_stack
    task = await _create(stack, user)
    task_id = task["task_id"]
    _rcpt, asked = await inbox.next()
    await wait_status(stack.http, task_id, user.headers, {"needs_input"}, timeout=WAIT)

    await asyncio.to_thread(inbound.send, _reply_to(asked, "Mallory says black.", sender="mallory@example.net"),
                            mail_from="mallory@example.net")
    log = await inbound.wait_log("wrong_sender")
    assert f"to task {task_id} from mallory@example.net: wrong_sender" in log

    await asyncio.to_thread(inbound.send, _reply_to(asked, "I am out of office until Monday.",
                                                    Auto_Submitted="auto-replied"), mail_from=OWNER)
    await inbound.wait_log("automatic_reply (Auto-Submitted: auto-replied)")
    await asyncio.to_thread(inbound.send, _reply_to(asked, "Weekly digest", Precedence="bulk"), mail_from=OWNER)
    await inbound.wait_log("automatic_reply (Precedence: bulk)")
    bounce = _reply_to(asked, "Delivery failed", sender="mailer-daemon@example.com")
    await asyncio.to_thread(inbound.send, bounce, mail_from="")
    await inbound.wait_log("null return path (bounce)")

    token = asked["Reply-To"].split("@")[0].removeprefix("reply+")
    forged = f"reply+{token[:-4]}{'aaaa' if token[-4:] != 'aaaa' else 'bbbb'}@{INBOUND_DOMAIN}"
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await asyncio.to_thread(inbound.send, _reply_to(asked, "Forged green."), mail_from=OWNER, to=[forged])
    assert refused.value.recipients[forged][0] == 550
    await inbound.wait_log("bad_token")
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        await asyncio.to_thread(inbound.send, _reply_to(asked, "x"), mail_from=OWNER, to=["someone@example.org"])
    await inbound.wait_log("not_reply_address")

    big = _reply_to(asked, "Green. " + "x" * (MAX_BYTES + 10))
    with pytest.raises(smtplib.SMTPException) as too_big:
        await asyncio.to_thread(inbound.send, big, mail_from=OWNER)
    assert "552" in str(too_big.value) or getattr(too_big.value, "smtp_code", None) == 552

    state = (await stack.http.get(f"{TASKS}/{task_id}", headers=user.headers)).json()
    assert state["status"] == "needs_input"
    assert not [e for e in await _events(stack, task_id, user) if e["event"] == "task.message"]
    assert "Forged" not in inbound.log() and token not in inbound.log()


def _mailgun_form(recipient: str, text: str, *, key: str = MAILGUN_KEY, sender: str = OWNER) -> dict:
    ts, tok = str(int(time.time())), os.urandom(16).hex()
    return {
        "recipient": recipient, "sender": sender, "from": f"Olive <{sender}>", "subject": "Re: question",
        "body-plain": text, "message-headers": json.dumps([["From", f"Olive <{sender}>"], ["To", recipient]]),
        "timestamp": ts, "token": tok,
        "signature": hmac.new(key.encode(), (ts + tok).encode(), hashlib.sha256).hexdigest(),
    }


@pytest.mark.postgres
async def test_mailgun_and_postmark_webhooks_check_their_signatures(mail_stack, user, caplog):
    stack, inbox = mail_stack
    first = await _create(stack, user, title="Mailgun task")
    second = await _create(stack, user, title="Postmark task")
    for t in (first, second):
        await wait_status(stack.http, t["task_id"], user.headers, {"needs_input"}, timeout=WAIT)
    # The reply address of each task's question email: it names the task.needs_input event's seq.
    addr = {}
    async with stack.db.session() as s:
        from sqlalchemy import select

        from core.models import TaskEvent

        for t in (first, second):
            seq = (await s.execute(select(TaskEvent.seq).where(
                TaskEvent.task_id == t["task_id"], TaskEvent.type == "task.needs_input"))).scalar_one()
            addr[t["task_id"]] = reply_address(stack.settings, t["task_id"], seq)
    addr1, addr2 = addr[first["task_id"]], addr[second["task_id"]]
    quoted = "Blue.\n\nOn Tue, Dec 1, 2026 CodeTether wrote:\n> Which color?\n"

    bad = _mailgun_form(addr1, quoted, key="not-the-key")
    r = await stack.http.post("/v1/inbound/email/mailgun", data=bad)
    assert r.status_code == 401 and r.json()["code"] == "invalid_signature"
    stale = _mailgun_form(addr1, quoted)
    ts = str(int(time.time()) - 3600)
    stale.update(timestamp=ts, signature=hmac.new(MAILGUN_KEY.encode(), (ts + stale["token"]).encode(),
                                                   hashlib.sha256).hexdigest())
    assert (await stack.http.post("/v1/inbound/email/mailgun", data=stale)).status_code == 401
    r = await stack.http.post("/v1/inbound/email/mailgun", files={k: (None, v) for k, v in _mailgun_form(addr1, quoted).items()})
    assert r.status_code == 200, r.text
    assert r.json() == {"delivered": True, "outcome": "answered"}
    done = await wait_status(stack.http, first["task_id"], user.headers, {"completed"}, timeout=WAIT)
    assert done["result"].startswith("Thanks, noted: Blue.")
    # An authentic post of a wrong sender is taken (no provider retry) and does nothing.
    with caplog.at_level("WARNING", logger="codetether.inbound_email"):
        r = await stack.http.post("/v1/inbound/email/mailgun", data=_mailgun_form(addr2, "Black.", sender="eve@example.net"))
    assert r.status_code == 200 and r.json() == {"delivered": False, "outcome": "wrong_sender"}
    assert any("wrong_sender" in rec.getMessage() and second["task_id"] in rec.getMessage() for rec in caplog.records)

    postmark = {
        "From": f"Olive <{OWNER}>", "FromFull": {"Email": OWNER, "Name": "Olive"}, "To": addr2,
        "ToFull": [{"Email": addr2, "Name": "", "MailboxHash": ""}], "OriginalRecipient": addr2,
        "Subject": "Re: question", "TextBody": "Purple.\n\n-- \nOlive\n\n> Which color?\n",
        "Headers": [{"Name": "Return-Path", "Value": f"<{OWNER}>"}],
    }
    good = "Basic " + base64.b64encode(f"postmark:{POSTMARK_SECRET}".encode()).decode()
    wrong = "Basic " + base64.b64encode(b"postmark:guess").decode()
    r = await stack.http.post("/v1/inbound/email/postmark", json=postmark, headers={"Authorization": wrong})
    assert r.status_code == 401 and r.json()["code"] == "invalid_signature"
    assert (await stack.http.post("/v1/inbound/email/postmark", json=postmark)).status_code == 401
    r = await stack.http.post("/v1/inbound/email/postmark", json=postmark, headers={"Authorization": good})
    assert r.status_code == 200 and r.json() == {"delivered": True, "outcome": "answered"}, r.text
    done = await wait_status(stack.http, second["task_id"], user.headers, {"completed"}, timeout=WAIT)
    assert done["result"].startswith("Thanks, noted: Purple.")
    [msg] = [e for e in await _events(stack, second["task_id"], user) if e["event"] == "task.message"]
    assert msg["message"]["via"] == "email" and msg["message"]["text"] == "Purple."

    # A forged address through an authentic post: refused, logged, nothing delivered.
    forged = addr2[:-len(INBOUND_DOMAIN) - 5] + "zzzz@" + INBOUND_DOMAIN
    r = await stack.http.post("/v1/inbound/email/postmark", json={**postmark, "OriginalRecipient": forged},
                              headers={"Authorization": good})
    assert r.status_code == 200 and r.json() == {"delivered": False, "outcome": "bad_token"}


async def test_unconfigured_providers_are_404(stack):
    for provider in ("mailgun", "postmark"):
        r = await stack.http.post(f"/v1/inbound/email/{provider}", json={})
        assert r.status_code == 404 and r.json()["code"] == "inbound_provider_not_configured"
    assert (await stack.http.post("/v1/inbound/email/sendgrid", json={})).status_code == 404


def test_reply_parser_keeps_only_the_new_text():
    from core.inbound_email import new_text

    assert new_text("Green.\n\nOn Mon, Jan 5, 2026 at 9:00 AM Bot <b@x.io> wrote:\n> Which color?\n") == "Green."
    assert new_text("Green.\n\n-- \nOlive Owner\nExample Corp\n") == "Green."
    assert new_text("Line one.\nLine two.") == "Line one.\nLine two."


async def _question_address(stack, task_id: str, nth: int = 0) -> str:
    from sqlalchemy import select

    from core.models import TaskEvent

    async with stack.db.session() as s:
        seqs = (await s.execute(select(TaskEvent.seq).where(
            TaskEvent.task_id == task_id, TaskEvent.type == "task.needs_input").order_by(TaskEvent.seq))).scalars().all()
    return reply_address(stack.settings, task_id, seqs[nth])


async def test_a_reply_to_a_replaced_question_is_refused(mail_stack, user, caplog):
    stack, _inbox = mail_stack
    task = await _create(stack, user)
    task_id = task["task_id"]
    await wait_status(stack.http, task_id, user.headers, {"needs_input"}, timeout=WAIT)
    old_question = await _question_address(stack, task_id)
    r = await stack.http.post(f"{TASKS}/{task_id}/input", json={"message": "Blue"}, headers=user.headers)
    assert r.status_code == 200, r.text
    await wait_status(stack.http, task_id, user.headers, {"completed"}, timeout=WAIT)
    r = await stack.http.post(f"{TASKS}/{task_id}/messages", json={"message": "Again\nASK: Which door?"},
                              headers=user.headers)
    assert r.status_code == 200 and r.json()["delivered_as"] == "follow_up", r.text
    waiting = await wait_status(stack.http, task_id, user.headers, {"needs_input"}, timeout=WAIT)
    assert waiting["required_action"]["prompt"] == "Which door?"

    with caplog.at_level("WARNING", logger="codetether.inbound_email"):
        r = await stack.http.post("/v1/inbound/email/mailgun", data=_mailgun_form(old_question, "Red."))
    assert r.status_code == 200 and r.json() == {"delivered": False, "outcome": "stale_question"}
    assert any("stale_question" in rec.getMessage() for rec in caplog.records)
    assert (await stack.http.get(f"{TASKS}/{task_id}", headers=user.headers)).json()["status"] == "needs_input"
    # The email of the new question answers it.
    r = await stack.http.post("/v1/inbound/email/mailgun", data=_mailgun_form(await _question_address(stack, task_id, 1),
                                                                              "The red door."))
    assert r.json() == {"delivered": True, "outcome": "answered"}
    done = await wait_status(stack.http, task_id, user.headers, {"completed"}, timeout=WAIT)
    assert done["result"].startswith("Thanks, noted: The red door.")


async def test_a_reply_while_the_agent_works_waits_for_its_next_turn(mail_stack, user):
    from sqlalchemy import select

    from core.models import TaskEvent

    stack, _inbox = mail_stack
    task = await _create(stack, user, prompt="Paint it")
    task_id = task["task_id"]
    await wait_status(stack.http, task_id, user.headers, {"completed"}, timeout=WAIT)
    async with stack.db.session() as s:
        seq = (await s.execute(select(TaskEvent.seq).where(
            TaskEvent.task_id == task_id, TaskEvent.type == "task.completed"))).scalar_one()
    result_address = reply_address(stack.settings, task_id, seq)
    r = await stack.http.post(f"{TASKS}/{task_id}/messages", json={"message": "SLEEP: 4"}, headers=user.headers)
    assert r.status_code == 200 and r.json()["delivered_as"] == "follow_up", r.text
    await wait_status(stack.http, task_id, user.headers, {"running"}, timeout=WAIT)

    r = await stack.http.post("/v1/inbound/email/mailgun", data=_mailgun_form(result_address, "Also the fence."))
    assert r.status_code == 200 and r.json() == {"delivered": True, "outcome": "queued"}, r.text
    done = await wait_status(stack.http, task_id, user.headers, {"completed"}, timeout=WAIT)
    # The agent's last turn saw three user messages: the task, the follow-up and the email.
    assert "in 3 message(s)" in done["result"], done["result"]


async def test_other_senders_when_the_operator_allows_them(smtp_inbox, temporal_address, database_url, tmp_path,
                                                          temporal_env, db, user):
    _inbox, port = smtp_inbox
    settings = reply_settings(temporal_address, database_url, tmp_path, smtp_url=f"smtp://127.0.0.1:{port}",
                              mailgun_signing_key=MAILGUN_KEY, inbound_email_allow_any_sender=True)
    async with running_stack(settings, temporal_env.client, db) as stack:
        task = await _create(stack, user)
        await wait_status(stack.http, task["task_id"], user.headers, {"needs_input"}, timeout=WAIT)
        address = await _question_address(stack, task["task_id"])
        r = await stack.http.post("/v1/inbound/email/mailgun",
                                  data=_mailgun_form(address, "Teal.", sender="manager@example.org"))
        assert r.status_code == 200 and r.json() == {"delivered": True, "outcome": "answered"}, r.text
        await wait_status(stack.http, task["task_id"], user.headers, {"completed"}, timeout=WAIT)
        r = await stack.http.get(f"{TASKS}/{task['task_id']}/events", headers=user.headers)
        [msg] = [e for e in r.json()["data"] if e["event"] == "task.message"]
        assert msg["message"]["from"] == "manager@example.org" and msg["message"]["via"] == "email"
