"""Webhook signatures: the headers every delivery carries, and helpers receivers can verify with.

Used by the delivery activity (``codetether/webhooks/activities.py``) to sign each HTTP attempt and shipped
for receivers written in Python (``from codetether.webhooks.signing import verify_standard, verify_codetether``).
Two schemes are sent side by side (see docs/webhooks.md):

* CodeTether's own: ``X-CodeTether-Signature: sha256=<hex HMAC-SHA256(secret, body)>`` with the
  secret string's UTF-8 bytes as the key (what the n8n Code-node snippet computes);
* Standard Webhooks: ``webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>``
  where the key is the base64-decoded part after ``whsec_`` (else the secret's bytes). While a
  rotated secret is still valid the header carries one space-separated ``v1,`` value per secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _secrets
import time
from collections.abc import Iterable, Mapping

SECRET_PREFIX = "whsec_"
# Receivers should refuse timestamps further than this from their clock (replay protection).
DEFAULT_TOLERANCE_SECONDS = 300


class SignatureError(ValueError):
    pass


def generate_secret(nbytes: int = 32) -> str:
    """A new signing secret: ``whsec_`` + base64 of ``nbytes`` random bytes."""
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(nbytes)).decode("ascii")


def standard_key(secret: str) -> bytes:
    """The HMAC key of the Standard Webhooks scheme for ``secret``."""
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            pass
    return secret.encode("utf-8")


def _raw(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else body


def codetether_signature(secret: str, body: bytes | str) -> str:
    digest = hmac.new(secret.encode("utf-8"), _raw(body), hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def standard_signature(secret: str, msg_id: str, timestamp: int | str, body: bytes | str) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + _raw(body)
    mac = hmac.new(standard_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def signed_headers(
    *,
    body: bytes | str,
    event_id: str,
    event_type: str,
    delivery_id: str,
    secrets: list[str],
    user_agent: str,
    timestamp: int | None = None,
) -> dict[str, str]:
    """All headers of one delivery attempt. ``secrets[0]`` is the current secret; any others are
    rotated-out secrets still in their grace period. No secret: the same headers, unsigned."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": user_agent,
        "X-CodeTether-Event": event_type,
        "X-CodeTether-Delivery": delivery_id,
        "X-CodeTether-Timestamp": str(ts),
        "webhook-id": event_id,
        "webhook-timestamp": str(ts),
    }
    if secrets:
        headers["X-CodeTether-Signature"] = codetether_signature(secrets[0], body)
        headers["webhook-signature"] = " ".join(standard_signature(s, event_id, ts, body) for s in secrets)
    return headers


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def _check_time(ts: str | None, tolerance: int, now: float | None) -> int:
    try:
        value = int(ts or "")
    except ValueError:
        raise SignatureError("missing or malformed timestamp") from None
    current = time.time() if now is None else now
    if abs(current - value) > tolerance:
        raise SignatureError("timestamp outside the tolerance window")
    return value


def verify_standard(
    secret: str | Iterable[str],
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Checks the Standard Webhooks headers; raises :class:`SignatureError` if they do not match.
    ``secret`` may be several secrets (during your own rotation)."""
    msg_id = _header(headers, "webhook-id")
    sig_header = _header(headers, "webhook-signature")
    if not msg_id or not sig_header:
        raise SignatureError("missing webhook-id or webhook-signature")
    ts = _check_time(_header(headers, "webhook-timestamp"), tolerance, now)
    candidates = [secret] if isinstance(secret, str) else list(secret)
    offered = [part for part in sig_header.split(" ") if part]
    for s in candidates:
        expected = standard_signature(s, msg_id, ts, body)
        if any(hmac.compare_digest(expected, part) for part in offered):
            return
    raise SignatureError("no matching signature")


def verify_codetether(
    secret: str | Iterable[str],
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Checks ``X-CodeTether-Signature`` (and the age of ``X-CodeTether-Timestamp``)."""
    offered = _header(headers, "x-codetether-signature")
    if not offered:
        raise SignatureError("missing X-CodeTether-Signature")
    _check_time(_header(headers, "x-codetether-timestamp"), tolerance, now)
    candidates = [secret] if isinstance(secret, str) else list(secret)
    for s in candidates:
        if hmac.compare_digest(codetether_signature(s, body), offered):
            return
    raise SignatureError("no matching signature")


def mask_secret(secret: str) -> str:
    """What the API shows of a stored secret after creation."""
    if secret.startswith(SECRET_PREFIX):
        return SECRET_PREFIX + "…" + secret[-4:]
    return "…" + secret[-4:] if len(secret) > 8 else "…"
