"""Email reply-to continuation over real SMTP on loopback.

The stack sends its notification emails to an aiosmtpd sink; replies go to a real
``codetether inbound-smtp`` process (a subprocess on a free port, same database and Temporal
server as the test's worker). A reply with a quoted original and a signature answers the question
with only its new text; a reply to the completion email starts a follow-up run; a wrong sender, a
forged token, an automatic reply and an oversized message do nothing and say so in the log.
"""

from __future__ import annotations

import asyncio
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

from tests.conftest import wait_status
from tests.notifications.test_email import _free_port
from tests.replies.conftest import INBOUND_DOMAIN, OWNER, TASKS, WAIT
from tests.replies.conftest import create_notified as _create
from tests.replies.conftest import events as _events

MAX_BYTES = 64 * 1024


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
        # The sender checks ask DNS; tests/replies/test_forged_replies.py runs them with a resolver
        # of its own against an in-process listener.
        "CODETETHER_INBOUND_EMAIL_VERIFY_SENDER": "false",
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


def test_reply_parser_keeps_only_the_new_text():
    from codetether.replies.inbound_email import new_text

    assert new_text("Green.\n\nOn Mon, Jan 5, 2026 at 9:00 AM Bot <b@x.io> wrote:\n> Which color?\n") == "Green."
    assert new_text("Green.\n\n-- \nOlive Owner\nExample Corp\n") == "Green."
    assert new_text("Line one.\nLine two.") == "Line one.\nLine two."
