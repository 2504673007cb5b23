"""Signed reply tokens: the ``/r/<token>`` link and the ``reply+<token>@domain`` email address.

Both are signed with ``CODETETHER_REPLY_SECRET`` and hold no secret themselves; nothing is stored.

- A **link token** (``itsdangerous``, its own salt) carries ``[task_id, required_action_id,
  expires]``. It is written into ``required_action.reply_url`` when the worker records
  ``task.needs_input`` (:func:`reply_url_for`) and checked by ``api/reply/``.
- An **email token** must fit an address's local part (64 octets, and mail systems may fold its
  case), so it is 30 bytes in lower-case base32 (48 characters): the task's ULID, the ``seq`` of
  the event the email was sent for, and 80 bits of HMAC-SHA256 over both. The event row says what
  the reply answers (see :mod:`codetether.replies.inbound_email`).

Verification returns ``None`` for anything tampered, expired or signed for the other channel; the
callers answer that with a 404 or a logged rejection and never say which.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import time
from dataclasses import dataclass
from datetime import datetime

from itsdangerous import BadSignature, URLSafeSerializer

from codetether.core.config import Settings
from codetether.core.ids import as_utc, parse_iso

LINK_SALT = "codetether.reply-link"
EMAIL_CONTEXT = b"codetether.reply-email\x00"
EMAIL_LOCAL_PREFIX = "reply+"
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_MAC_BYTES = 10
_TOKEN_BYTES = 16 + 4 + _MAC_BYTES


@dataclass(frozen=True)
class LinkClaim:
    task_id: str
    required_action_id: str
    expires_at: int  # Unix seconds


@dataclass(frozen=True)
class EmailClaim:
    task_id: str
    seq: int


def link_expiry(settings: Settings, asked_at: datetime, input_timeout_seconds: float | None) -> int:
    """When a link for a question asked at ``asked_at`` stops working: the configured lifetime, but
    never later than the task's input timeout (after which the question is dead anyway)."""
    ttl = settings.reply_link_ttl_seconds
    if input_timeout_seconds:
        ttl = min(ttl, input_timeout_seconds)
    return int(as_utc(asked_at).timestamp() + ttl)


def _link_serializer(settings: Settings) -> URLSafeSerializer | None:
    if not settings.reply_secret:
        return None
    return URLSafeSerializer(settings.reply_secret, salt=LINK_SALT)


def sign_link(settings: Settings, task_id: str, required_action_id: str, expires_at: int) -> str | None:
    serializer = _link_serializer(settings)
    if serializer is None:
        return None
    return serializer.dumps([task_id, required_action_id, int(expires_at)])


def reply_url_for(
    settings: Settings, task_id: str, required_action: dict, input_timeout_seconds: float | None
) -> str | None:
    """The public ``reply_url`` of a pending question, or None without a reply secret."""
    asked = parse_iso(required_action.get("asked_at"))
    if asked is None:
        return None
    token = sign_link(
        settings, task_id, required_action["id"], link_expiry(settings, asked, input_timeout_seconds)
    )
    if token is None:
        return None
    return f"{settings.api_base_url.rstrip('/')}/r/{token}"


def verify_link(settings: Settings, token: str, *, now: float | None = None) -> LinkClaim | None:
    serializer = _link_serializer(settings)
    if serializer is None or len(token) > 512:
        return None
    try:
        value = serializer.loads(token)
    except BadSignature:
        return None
    if (
        not isinstance(value, list)
        or len(value) != 3
        or not all(isinstance(v, str) for v in value[:2])
        or not isinstance(value[2], int)
    ):
        return None
    claim = LinkClaim(value[0], value[1], value[2])
    if claim.expires_at <= (time.time() if now is None else now):
        return None
    return claim


# ---- email tokens -----------------------------------------------------------------------------


def _ulid_bytes(task_id: str) -> bytes | None:
    prefix, _, body = task_id.partition("_")
    if prefix != "task" or len(body) != 26:
        return None
    value = 0
    for ch in body.lower():
        idx = _CROCKFORD.find(ch)
        if idx < 0:
            return None
        value = value * 32 + idx
    if value >> 128:
        return None
    return value.to_bytes(16, "big")


def _ulid_text(raw: bytes) -> str:
    value = int.from_bytes(raw, "big")
    out = []
    for _ in range(26):
        out.append(_CROCKFORD[value & 31])
        value >>= 5
    return "task_" + "".join(reversed(out))


def _email_mac(secret: str, task_id: str, seq: int) -> bytes:
    msg = EMAIL_CONTEXT + task_id.encode() + b"\x00" + str(seq).encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).digest()[:_MAC_BYTES]


def sign_email(settings: Settings, task_id: str, seq: int) -> str | None:
    raw = _ulid_bytes(task_id)
    if raw is None or not settings.reply_secret or not 0 < seq < 2**32:
        return None
    blob = raw + struct.pack(">I", seq) + _email_mac(settings.reply_secret, task_id, seq)
    return base64.b32encode(blob).decode().rstrip("=").lower()


def verify_email(settings: Settings, token: str) -> EmailClaim | None:
    if not settings.reply_secret or len(token) != 48:
        return None
    try:
        blob = base64.b32decode(token.upper())
    except (ValueError, TypeError):
        return None
    if len(blob) != _TOKEN_BYTES:
        return None
    task_id = _ulid_text(blob[:16])
    (seq,) = struct.unpack(">I", blob[16:20])
    if not hmac.compare_digest(blob[20:], _email_mac(settings.reply_secret, task_id, seq)):
        return None
    return EmailClaim(task_id, seq)


def reply_address(settings: Settings, task_id: str, seq: int) -> str | None:
    """``reply+<token>@<inbound domain>`` for the email about event ``seq``, or None when email
    replies are not configured."""
    if not settings.inbound_email_domain:
        return None
    token = sign_email(settings, task_id, seq)
    if token is None:
        return None
    return f"{EMAIL_LOCAL_PREFIX}{token}@{settings.inbound_email_domain}"


def token_from_address(settings: Settings, address: str) -> str | None:
    """The token of a ``reply+<token>@<inbound domain>`` address; None for any other address."""
    local, at, domain = address.strip().strip("<>").rpartition("@")
    if not at or not settings.inbound_email_domain:
        return None
    if domain.lower() != settings.inbound_email_domain.lower():
        return None
    if not local.lower().startswith(EMAIL_LOCAL_PREFIX):
        return None
    return local[len(EMAIL_LOCAL_PREFIX):].lower()
