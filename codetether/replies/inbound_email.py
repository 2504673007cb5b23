"""Email replies to ``reply+<token>@<CODETETHER_INBOUND_EMAIL_DOMAIN>``: one rule for every way in.

``codetether inbound-smtp`` (:mod:`codetether.replies.inbound_smtp`) and the providers' webhooks
(``POST /v1/inbound/email/{mailgun,postmark}``, ``api/inbound/``) turn what they receive into an
:class:`InboundReply`, with their verdict on its sender (:mod:`codetether.replies.senderauth`), and
call :func:`handle_reply`, which

1. checks the token of the recipient address (:mod:`codetether.replies.tokens`; it names the task and the
   event the email was about);
2. ignores bounces and automatic replies (RFC 3834 ``Auto-Submitted``, ``Precedence: bulk``/
   ``junk``/``list``, ``X-Autoreply``, a null return path, delivery reports);
3. refuses an address whose email is older than ``CODETETHER_REPLY_EMAIL_TTL_SECONDS`` (7 days);
4. refuses a sender other than the task's ``notify_email``, unless
   ``CODETETHER_INBOUND_EMAIL_ALLOW_ANY_SENDER`` is true, and a sender whose ``From:`` domain is not
   authenticated (DKIM or SPF, aligned), unless ``CODETETHER_INBOUND_EMAIL_VERIFY_SENDER`` is false;
5. keeps only the new text: the quoted original and the signature are cut by mail-parser-reply;
6. takes each reply address once (``email_reply_uses``): a second reply to the same email is
   refused, so a leaked address cannot start run after run;
7. delivers it with ``via="email"`` through :mod:`codetether.tasks.conversation`. The email of a
   question only answers that question while it is pending (a reply to a question that was
   answered or replaced is refused); the email of a result starts a follow-up run once the task is
   finished, or is a message for the agent's next turn while it runs. A task whose codebase pushes
   (``push: branch`` or ``pull_request``) takes no run-starting email at all: the owner sends that
   follow-up from the console or the API, where they are signed in.

A delivered reply shows as a ``task.message`` event of the task; every refusal is one ``rejected
email reply`` warning in the log, with the reason and never the token.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr

from mailparser_reply import EmailReplyParser
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from temporalio.client import Client

from codetether.tasks import conversation
from codetether.accounts.service import TIER_CONCURRENCY
from codetether.core.config import Settings
from codetether.tasks.conversation import ConversationError
from codetether.core.db import Database
from codetether.core.errors import ServiceError
from codetether.core.ids import as_utc, utcnow
from codetether.core.models import Codebase, EmailReplyUse, Task, TaskEvent, User
from codetether.replies.senderauth import SenderCheck
from codetether.replies.tokens import token_from_address, verify_email
from codetether.tasks.answers import read_text_answer
from codetether.tasks.contracts import VIA_EMAIL, TaskStatus

log = logging.getLogger("codetether.inbound_email")

# Outcomes (``InboundOutcome.reason``).
ANSWERED = "answered"
FOLLOW_UP = "follow_up"
QUEUED = "queued"
NOT_FOR_US = "not_reply_address"
BAD_TOKEN = "bad_token"
AUTOMATIC = "automatic_reply"
WRONG_SENDER = "wrong_sender"
EMPTY = "empty_reply"
STALE = "stale_question"
UNDELIVERABLE = "undeliverable"
EXPIRED = "expired_address"
USED = "used_address"
UNAUTHENTICATED = "unauthenticated_sender"
CONFIRMATION_REQUIRED = "confirmation_required"

_PUSHING = ("branch", "pull_request")

_BULK_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
_PARSER_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pt", "sv", "pl", "ja", "zh"]


class InboundRetryLater(Exception):
    """The task could not be reached right now (no worker, Temporal away): the sender retries."""


@dataclass
class InboundReply:
    recipient: str
    sender: str  # the From address
    text: str  # the plain-text body as received, quotes and all
    channel: str  # "smtp", "mailgun" or "postmark" (for the log)
    headers: list[tuple[str, str]] = field(default_factory=list)
    # SMTP MAIL FROM / Return-Path: "" (the null path) is a bounce; None when unknown.
    envelope_sender: str | None = None
    content_type: str = "text/plain"
    # What the way in found out about the sender (DKIM, SPF, the provider's verdicts); None: not checked.
    sender_check: SenderCheck | None = None


@dataclass
class InboundOutcome:
    delivered: bool
    reason: str
    task_id: str | None = None


def _address(value: str) -> str:
    return parseaddr(value or "")[1].strip().lower()


def automatic_reason(reply: InboundReply) -> str | None:
    """Why this message is a bounce or an automatic reply (and must not reach the agent), else None."""
    if reply.envelope_sender is not None and reply.envelope_sender.strip() in ("", "<>"):
        return "null return path (bounce)"
    if reply.content_type.lower() == "multipart/report":
        return "delivery report"
    for name, value in reply.headers:
        lname, lvalue = name.lower(), (value or "").strip().lower()
        if lname == "auto-submitted" and lvalue and lvalue != "no":
            return f"Auto-Submitted: {lvalue}"
        if lname == "precedence" and lvalue in _BULK_PRECEDENCE:
            return f"Precedence: {lvalue}"
        if lname in ("x-autoreply", "x-autorespond"):
            return f"{name}: {value}"
        if lname == "return-path" and lvalue in ("<>", ""):
            return "null return path (bounce)"
    if _address(reply.sender).split("@")[0] in ("mailer-daemon", "postmaster"):
        return "sent by a mail system"
    return None


def new_text(text: str) -> str:
    """The reply's own words: the quoted original, reply headers and signature removed."""
    parsed = EmailReplyParser(languages=_PARSER_LANGUAGES).read(text.replace("\r\n", "\n"))
    if not parsed.replies:
        return text.strip()
    return (parsed.replies[0].body or "").strip()


def plain_text(msg: EmailMessage) -> tuple[str | None, str]:
    """The text/plain body of a parsed message (None if it has none) and its top content type."""
    part = msg.get_body(preferencelist=("plain",))
    return (part.get_content() if part is not None else None), msg.get_content_type()


def reply_from_message(msg: EmailMessage, *, recipient: str, envelope_sender: str | None, channel: str) -> InboundReply:
    text, ctype = plain_text(msg)
    return InboundReply(
        recipient=recipient,
        sender=str(msg.get("From", "")),
        text=text or "",
        channel=channel,
        headers=[(k, str(v)) for k, v in msg.items()],
        envelope_sender=envelope_sender,
        content_type=ctype,
    )


def _reject(reply: InboundReply, reason: str, detail: str, task_id: str | None = None) -> InboundOutcome:
    log.warning(
        "rejected email reply via %s to task %s from %s: %s (%s)",
        reply.channel, task_id or "-", _address(reply.sender) or "-", reason, detail,
    )
    return InboundOutcome(False, reason, task_id)


@dataclass
class _Target:
    task: Task | None
    event: TaskEvent | None
    user: User | None
    push: str  # the push policy of the task's codebase, "none" without one


async def _load(db: Database, task_id: str, seq: int) -> _Target:
    async with db.session() as s:
        task = await s.get(Task, task_id)
        if task is None:
            return _Target(None, None, None, "none")
        event = (
            await s.execute(select(TaskEvent).where(TaskEvent.task_id == task_id, TaskEvent.seq == seq))
        ).scalar_one_or_none()
        user = await s.get(User, task.user_id)
        codebase = await s.get(Codebase, task.codebase_id) if task.codebase_id else None
    return _Target(task, event, user, codebase.push if codebase is not None else "none")


async def _claim(db: Database, task_id: str, seq: int) -> bool:
    """Marks the reply address of event ``seq`` used; False when it already was."""
    try:
        async with db.session() as s:
            s.add(EmailReplyUse(task_id=task_id, seq=seq))
            await s.commit()
    except IntegrityError:
        return False
    return True


async def _release(db: Database, task_id: str, seq: int) -> None:
    """Nothing was delivered: the address may be used again (the sender's retry, a fixed reply)."""
    async with db.session() as s:
        await s.execute(delete(EmailReplyUse).where(EmailReplyUse.task_id == task_id, EmailReplyUse.seq == seq))
        await s.commit()


def _event_action(event: TaskEvent) -> str | None:
    if event.type != "task.needs_input":
        return None
    return ((json.loads(event.body).get("data") or {}).get("required_action") or {}).get("id")


async def handle_reply(db: Database, client: Client, settings: Settings, reply: InboundReply) -> InboundOutcome:
    token = token_from_address(settings, reply.recipient)
    if token is None:
        return _reject(reply, NOT_FOR_US, "not a reply address of this server")
    claim = verify_email(settings, token)
    if claim is None:
        return _reject(reply, BAD_TOKEN, "the reply address is not signed by this server")
    auto = automatic_reason(reply)
    if auto is not None:
        return _reject(reply, AUTOMATIC, auto, claim.task_id)
    target = await _load(db, claim.task_id, claim.seq)
    task, event = target.task, target.event
    if task is None or event is None:
        return _reject(reply, BAD_TOKEN, "the task or its email is gone", claim.task_id)
    if as_utc(event.created_at) + timedelta(seconds=settings.reply_email_ttl_seconds) < utcnow():
        return _reject(reply, EXPIRED, "the email of this reply address is too old", task.id)
    sender = _address(reply.sender)
    allowed = {_address(a) for _n, a in getaddresses([task.notify_email or ""])} - {""}
    if not settings.inbound_email_allow_any_sender and sender not in allowed:
        return _reject(reply, WRONG_SENDER, "the sender is not the task's notify_email", task.id)
    check = reply.sender_check
    if settings.inbound_email_verify_sender and (check is None or not check.verified):
        return _reject(reply, UNAUTHENTICATED, check.detail if check is not None else "the sender was not checked",
                       task.id)
    text = new_text(reply.text)
    if not text:
        return _reject(reply, EMPTY, "no new text above the quoted message", task.id)

    action_id = _event_action(event)
    pending = (task.required_action or {}).get("id")
    answers = task.status == TaskStatus.NEEDS_INPUT.value
    if action_id is not None and (not answers or action_id != pending):
        # The email of a question answers that question and nothing else.
        return _reject(reply, STALE, "the question of this email was answered or replaced", task.id)
    if not answers and target.push in _PUSHING:
        return _reject(reply, CONFIRMATION_REQUIRED, f"the task's codebase pushes ({target.push}): a run that "
                       "may push is started from the console or the API, not by email", task.id)
    if not await _claim(db, task.id, claim.seq):
        return _reject(reply, USED, "this reply address was already used", task.id)
    try:
        outcome = await _deliver(db, client, settings, task, target.user, text, answers, pending, sender)
    except InboundRetryLater:
        await _release(db, task.id, claim.seq)
        raise
    except ServiceError as err:
        # Refused by the task (a ConversationError) or by the action's rules (an approval's email
        # that says neither approve nor reject): the address may be used again.
        await _release(db, task.id, claim.seq)
        return _reject(reply, UNDELIVERABLE, f"{err.code}: {err.message}", task.id)
    except BaseException:
        await _release(db, task.id, claim.seq)
        raise
    log.info("email reply from %s to task %s delivered: %s (sender %s)", sender, task.id, outcome,
             check.method if check is not None and check.verified else "not checked")
    return InboundOutcome(True, outcome, task.id)


async def _deliver(db: Database, client: Client, settings: Settings, task: Task, user: User | None, text: str,
                   answers: bool, pending: str | None, sender: str) -> str:
    try:
        if answers:
            # An approval's "approve"/"reject" or an option on the first line (CONTRACT §12).
            message, choice, decision = read_text_answer(task.required_action, text)
            await conversation.provide_input(db, client, task, message, pending, via=VIA_EMAIL, sender=sender,
                                             choice=choice, decision=decision)
            return ANSWERED
        limit = TIER_CONCURRENCY.get(user.tier, 5) if user is not None else 5
        delivery = await conversation.send_message(
            db, client, settings, task, text, concurrency_limit=limit, via=VIA_EMAIL, sender=sender
        )
    except ConversationError as err:
        if err.code in (conversation.WORKER_UNAVAILABLE, conversation.TEMPORAL_UNAVAILABLE):
            log.warning("email reply to task %s deferred: %s", task.id, err.code)
            raise InboundRetryLater(err.message) from None
        raise
    return {conversation.DELIVERED_FOLLOW_UP: FOLLOW_UP, conversation.DELIVERED_REPLY: ANSWERED}.get(
        delivery.delivered_as, QUEUED
    )


__all__ = ["InboundOutcome", "InboundReply", "automatic_reason", "handle_reply", "new_text", "reply_from_message"]
