"""The needs_input email of a question with options and of a plan approval (CONTRACT §12): one
link per option or decision, and an email reply whose first line names an option or says
approve/reject (through Mailgun's inbound webhook)."""

from __future__ import annotations

from urllib.parse import quote

from tests.conftest import wait_status
from tests.replies.conftest import WAIT
from tests.replies.conftest import create_notified as _create
from tests.replies.conftest import question_address as _question_address
from tests.replies.test_inbound_webhooks import _mailgun_form


async def _question_email(inbox) -> str:
    while True:
        _rcpt, msg = await inbox.next()
        if msg["X-CodeTether-Event"] == "task.needs_input":
            return msg.get_body(("plain",)).get_content().replace("\r\n", "\n")


async def _reply(stack, address: str, text: str) -> dict:
    r = await stack.http.post("/v1/inbound/email/mailgun", files={k: (None, v) for k, v in _mailgun_form(address, text).items()})
    assert r.status_code == 200, r.text
    return r.json()


async def test_an_option_on_the_first_line_of_a_reply_chooses_it(mail_stack, user):
    stack, inbox = mail_stack
    task = await _create(stack, user, prompt="ASK: Which color? [red|dark green|blue]")
    waiting = await wait_status(stack.http, task["task_id"], user.headers, {"needs_input"}, timeout=WAIT)
    url = waiting["required_action"]["reply_url"]
    body = await _question_email(inbox)
    assert "Choose one:" in body
    for option in ("red", "dark green", "blue"):
        assert f"  {option}: {url}?choice={quote(option, safe='')}" in body
    assert (await stack.http.get(url.removeprefix(stack.settings.public_url) + "?choice=dark%20green")).text.count(
        "Confirm: dark green") == 1

    address = await _question_address(stack, task["task_id"])
    assert await _reply(stack, address, "Dark green.\nTwo coats, please.\n\nOn Tue, CodeTether wrote:\n> Which color?\n") == {
        "delivered": True, "outcome": "answered"}
    done = await wait_status(stack.http, task["task_id"], user.headers, {"completed", "failed"}, timeout=WAIT)
    assert "Thanks, noted: dark green\n\nTwo coats, please.." in done["result"], done
    events = (await stack.http.get(f"/v1/automation/tasks/{task['task_id']}/events", headers=user.headers)).json()["data"]
    [reply] = [e["message"] for e in events if e["event"] == "task.message"]
    assert reply["choice"] == "dark green" and reply["via"] == "email"


async def test_an_approval_email_has_a_link_per_decision_and_a_reply_decides(mail_stack, user):
    stack, inbox = mail_stack
    task = await _create(stack, user, prompt="PLAN: # Paint plan\nPLAN: - two coats", require_approval="plan",
                         agent_type="general")
    waiting = await wait_status(stack.http, task["task_id"], user.headers, {"needs_input"}, timeout=WAIT)
    action = waiting["required_action"]
    assert action["kind"] == "approval"
    body = await _question_email(inbox)
    assert "# Paint plan\n- two coats" in body
    assert f"{action['reply_url']}?decision=approve" in body and f"{action['reply_url']}?decision=reject" in body

    address = await _question_address(stack, task["task_id"])
    # Neither approve nor reject: refused, the address stays usable and the task keeps waiting.
    out = await _reply(stack, address, "Looks nice")
    assert out["delivered"] is False
    assert (await stack.http.get(f"/v1/automation/tasks/{task['task_id']}", headers=user.headers)).json()["status"] == "needs_input"
    assert await _reply(stack, address, "Approve\nGo ahead.") == {"delivered": True, "outcome": "answered"}
    done = await wait_status(stack.http, task["task_id"], user.headers, {"completed", "failed"}, timeout=WAIT)
    assert done["status"] == "completed", done
    events = (await stack.http.get(f"/v1/automation/tasks/{task['task_id']}/events", headers=user.headers)).json()["data"]
    [reply] = [e["message"] for e in events if e["event"] == "task.message"]
    assert reply["decision"] == "approve" and reply["text"] == "approve\n\nGo ahead."
