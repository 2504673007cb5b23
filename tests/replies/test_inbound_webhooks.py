"""Email replies through the providers' inbound webhooks (``POST /v1/inbound/email/mailgun`` and
``…/postmark``) with good and bad signatures, and the reply rules that do not depend on the way in:
a replaced question, a reply while the agent works, senders other than ``notify_email``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time

import pytest

from codetether.replies.tokens import reply_address
from tests.conftest import running_stack, wait_status
from tests.replies.conftest import (
    INBOUND_DOMAIN,
    MAILGUN_KEY,
    OWNER,
    POSTMARK_SECRET,
    TASKS,
    WAIT,
    reply_settings,
)
from tests.replies.conftest import create_notified as _create
from tests.replies.conftest import events as _events
from tests.replies.conftest import question_address as _question_address


def _mailgun_form(recipient: str, text: str, *, key: str = MAILGUN_KEY, sender: str = OWNER, spf: str = "Pass",
                  timestamp: int | None = None) -> dict:
    """A Mailgun forward() post; Mailgun found the sending host allowed by ``sender``'s SPF."""
    ts, tok = str(int(time.time()) if timestamp is None else timestamp), os.urandom(16).hex()
    return {
        "recipient": recipient, "sender": sender, "from": f"Olive <{sender}>", "subject": "Re: question",
        "body-plain": text, "message-headers": json.dumps([["From", f"Olive <{sender}>"], ["To", recipient]]),
        "X-Mailgun-Spf": spf, "X-Mailgun-Dkim-Check-Result": "Fail",
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

        from codetether.core.models import TaskEvent

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
        "Headers": [{"Name": "Received-SPF", "Value": "Pass (sender SPF authorized) identity=mailfrom"},
                    {"Name": "Return-Path", "Value": f"<{OWNER}>"}],
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

    from codetether.core.models import TaskEvent

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
