"""``POST /v1/inbound/email/{provider}``: email replies posted by a mail provider's inbound parsing.

- ``mailgun``: a Route's ``forward()`` posts the parsed message as a form (urlencoded or
  multipart); it is authenticated by Mailgun's signature, HMAC-SHA256 of ``timestamp + token``
  with the webhook signing key (``CODETETHER_MAILGUN_SIGNING_KEY``), not older than
  :data:`MAX_SIGNATURE_AGE` seconds nor more than :data:`MAX_CLOCK_SKEW` in the future, and taken
  once (:mod:`codetether.replies.replays`): a post sent again is answered ``replayed`` and does
  nothing. The sender is vouched for by Mailgun's ``X-Mailgun-Spf`` / ``X-Mailgun-Dkim-Check-Result``.
- ``postmark``: Postmark's inbound webhook posts JSON; Postmark does not sign it, so the URL
  carries basic-auth credentials whose password is ``CODETETHER_POSTMARK_INBOUND_SECRET``. The
  sender is vouched for by the ``Received-SPF`` and SpamAssassin ``X-Spam-Tests`` headers Postmark
  adds (:mod:`codetether.replies.senderauth`).

A provider without its secret configured is 404. A bad signature is 401 and nothing else happens.
An authentic post answers 200 with what became of the reply, also when it was refused (a wrong
sender, an automatic reply: the provider must not retry those); 503 when the task could not be
reached, so the provider retries later.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from codetether.api.deps import State
from codetether.api.edge.errors import Problem, problem_responses
from codetether.core.ids import utcnow
from codetether.replies import replays
from codetether.replies.inbound_email import InboundReply, InboundRetryLater, handle_reply
from codetether.replies.senderauth import check_mailgun, check_postmark

router = APIRouter(prefix="/v1/inbound/email", tags=["inbound-email"])

# Mailgun's advice: refuse signatures older than a few minutes (replayed posts); a timestamp from
# the future is refused past a small clock difference.
MAX_SIGNATURE_AGE = 15 * 60
MAX_CLOCK_SKEW = 60
REPLAYED = "replayed"


class InboundResult(BaseModel):
    delivered: bool
    outcome: str


def _form_body(fields: dict[str, str]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            ctype: {"schema": {"type": "object", "properties": {k: {"type": "string", "description": v} for k, v in fields.items()}}}
            for ctype in ("application/x-www-form-urlencoded", "multipart/form-data")
        },
    }


_MAILGUN_FIELDS = {
    "recipient": "The reply address", "from": "The From header", "sender": "The envelope sender",
    "body-plain": "The text body", "message-headers": "JSON list of [name, value]",
    "timestamp": "Signature timestamp", "token": "Signature token", "signature": "HMAC-SHA256 hex",
    "X-Mailgun-Spf": "Mailgun's SPF verdict", "X-Mailgun-Dkim-Check-Result": "Mailgun's DKIM verdict",
}
_POSTMARK_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"type": "object", "properties": {
        "OriginalRecipient": {"type": "string"}, "From": {"type": "string"}, "TextBody": {"type": "string"},
        "Headers": {"type": "array", "items": {"type": "object"}},
    }}}},
}


async def _deliver(state, reply: InboundReply) -> InboundResult:
    client = await state.temporal()
    try:
        outcome = await handle_reply(state.db, client, state.settings, reply)
    except InboundRetryLater as err:
        raise Problem(503, "inbound_retry_later", f"the task could not be reached: {err}") from None
    return InboundResult(delivered=outcome.delivered, outcome=outcome.reason)


def _unsigned() -> Problem:
    return Problem(401, "invalid_signature", "the request is not signed by the configured provider")


@router.post(
    "/mailgun",
    operation_id="receiveMailgunEmail",
    response_model=InboundResult,
    summary="Receive an email reply from Mailgun",
    description="Target of a Mailgun Route `forward()` for `reply+*@<inbound domain>`; signed with the webhook signing key.",
    openapi_extra={"requestBody": _form_body(_MAILGUN_FIELDS)},
    responses=problem_responses(401, 404, 422, 503),
)
async def receive_mailgun(request: Request, state: State) -> InboundResult:
    key = state.settings.mailgun_signing_key
    if not key:
        raise Problem(404, "inbound_provider_not_configured", "Mailgun inbound email is not configured")
    try:
        form = await request.form()
    except Exception:  # noqa: BLE001 - an unreadable body is the sender's problem
        raise Problem(422, "invalid_inbound_email", "the body is not a form") from None
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    timestamp, token, signature = fields.get("timestamp", ""), fields.get("token", ""), fields.get("signature", "")
    expected = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not (timestamp.isdigit() and token and hmac.compare_digest(expected, signature.lower())):
        raise _unsigned()
    age = time.time() - int(timestamp)
    if age > MAX_SIGNATURE_AGE or age < -MAX_CLOCK_SKEW:
        raise _unsigned()
    try:
        headers = [(str(k), str(v)) for k, v in json.loads(fields.get("message-headers") or "[]")]
    except (ValueError, TypeError):
        headers = []
    ctype = next((v for k, v in headers if k.lower() == "content-type"), "text/plain").split(";")[0].strip()
    sender = fields.get("from") or fields.get("sender", "")
    reply = InboundReply(
        recipient=fields.get("recipient", "").split(",")[0],
        sender=sender,
        text=fields.get("body-plain", ""),
        channel="mailgun",
        headers=headers,
        envelope_sender=fields.get("sender"),
        content_type=ctype,
        sender_check=check_mailgun(fields, headers, sender),
    )
    key = replays.digest("mailgun", timestamp, token, signature.lower())
    if not await replays.take(state.db, key, utcnow() + timedelta(seconds=MAX_SIGNATURE_AGE + MAX_CLOCK_SKEW)):
        return InboundResult(delivered=False, outcome=REPLAYED)
    try:
        return await _deliver(state, reply)
    except Exception:
        # A 503 or 500: Mailgun retries this post with the same signature, and the retry must pass.
        await replays.give_back(state.db, key)
        raise


def _basic_password(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2]


@router.post(
    "/postmark",
    operation_id="receivePostmarkEmail",
    response_model=InboundResult,
    summary="Receive an email reply from Postmark",
    description="Target of Postmark's inbound webhook, with basic-auth credentials in its URL whose password is the "
    "configured secret.",
    openapi_extra={"requestBody": _POSTMARK_BODY},
    responses=problem_responses(400, 401, 404, 422, 503),
)
async def receive_postmark(request: Request, state: State) -> InboundResult:
    secret = state.settings.postmark_inbound_secret
    if not secret:
        raise Problem(404, "inbound_provider_not_configured", "Postmark inbound email is not configured")
    password = _basic_password(request)
    if password is None or not hmac.compare_digest(password.encode(), secret.encode()):
        problem = _unsigned()
        problem.headers["WWW-Authenticate"] = 'Basic realm="codetether-inbound"'
        raise problem
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise Problem(400, "malformed_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise Problem(422, "invalid_inbound_email", "the body must be a JSON object")
    headers = [
        (str(h.get("Name", "")), str(h.get("Value", ""))) for h in body.get("Headers") or [] if isinstance(h, dict)
    ]
    from_full = body.get("FromFull") if isinstance(body.get("FromFull"), dict) else {}
    recipient = body.get("OriginalRecipient") or next(
        (t.get("Email", "") for t in body.get("ToFull") or [] if isinstance(t, dict)), body.get("To", "")
    )
    sender = str(from_full.get("Email") or body.get("From") or "")
    reply = InboundReply(
        recipient=str(recipient or ""),
        sender=sender,
        text=str(body.get("TextBody") or ""),
        channel="postmark",
        headers=headers,
        envelope_sender=next((v for k, v in headers if k.lower() == "return-path"), None),
        sender_check=check_postmark(headers, sender),
    )
    return await _deliver(state, reply)
