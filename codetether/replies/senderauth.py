"""Is an email reply really from the address in its ``From:``? DKIM and SPF, aligned with that address.

Anyone can write any ``From:``; a reply address that leaked (a forwarded notification) must not
let a stranger speak for the task's owner. A reply counts as authenticated when its author's
domain (the domain of ``From:``) is vouched for in one of two ways, DMARC's rule of alignment:

- **DKIM**: a valid DKIM signature whose ``d=`` is the author's domain, a parent of it or a
  subdomain of it (checked with dkimpy, keys from DNS);
- **SPF**: the sending host may send for the envelope sender (``MAIL FROM``), and the envelope
  sender's domain aligns with the author's the same way (checked with pyspf). Only the SMTP
  listener sees the sending host, so it alone checks SPF itself.

The providers' webhooks carry the provider's own verdicts, read here the same way:
Mailgun's ``X-Mailgun-Spf`` and ``X-Mailgun-Dkim-Check-Result`` fields (the DKIM pass counts only
when every ``DKIM-Signature`` of the message names an aligned domain, since Mailgun does not say
which signature passed), Postmark's topmost ``Received-SPF`` and SpamAssassin's ``DKIM_VALID_AU``
("a valid signature from the author's domain") in its topmost ``X-Spam-Tests``. The topmost
header is the one the provider added; the same names further down came with the message.

Used by :mod:`codetether.replies.inbound_smtp` and ``api/inbound/``; the verdict travels in
:class:`codetether.replies.inbound_email.InboundReply` and ``handle_reply`` refuses an
unauthenticated reply unless ``CODETETHER_INBOUND_EMAIL_VERIFY_SENDER`` is false. DNS is looked up
through ``txt_lookup`` when one is given (tests serve their own keys and records), else the system
resolver.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from email.utils import getaddresses, parseaddr

import dkim
import spf

log = logging.getLogger("codetether.inbound_email")

# A name's TXT records, each as its strings joined; [] when it has none.
TxtLookup = Callable[[str], list[bytes]]

DKIM_MIN_KEY_BITS = 1024
SPF_QUERY_SECONDS = 10
_MAX_SIGNATURES = 5


@dataclass(frozen=True)
class SenderCheck:
    verified: bool
    method: str  # "dkim", "spf", "mailgun-dkim", "mailgun-spf", "postmark-dkim", "postmark-spf", or ""
    detail: str


def unverified(detail: str) -> SenderCheck:
    return SenderCheck(False, "", detail)


def domain_of(address: str) -> str:
    return parseaddr(address or "")[1].rpartition("@")[2].strip().strip(".").lower()


def author_domain(from_header: str) -> str | None:
    """The domain of a ``From:`` naming exactly one address; None for none or several."""
    addresses = [a for _n, a in getaddresses([from_header or ""]) if a]
    if len(addresses) != 1 or "@" not in addresses[0]:
        return None
    return domain_of(addresses[0]) or None


def aligned(domain: str, author: str) -> bool:
    """DMARC's relaxed alignment without a public-suffix list: the same domain, or one a subdomain
    of the other. A signature for ``co.uk`` cannot be made by a stranger, so the looser rule does
    not let one domain speak for an unrelated one."""
    d, a = domain.strip().strip(".").lower(), author.strip().strip(".").lower()
    if not d or not a:
        return False
    return d == a or a.endswith("." + d) or d.endswith("." + a)


# ---- DKIM and SPF, checked here (the SMTP listener) --------------------------------------------


def _dkim_dnsfunc(txt_lookup: TxtLookup | None):
    if txt_lookup is None:
        return dkim.dnsplug.get_txt

    def lookup(name: bytes | str, timeout: int = 5) -> bytes | None:
        text = name.decode() if isinstance(name, bytes) else name
        records = txt_lookup(text.rstrip("."))
        return records[0] if records else None

    return lookup


def check_dkim(raw: bytes, author: str, *, txt_lookup: TxtLookup | None = None) -> SenderCheck:
    """A valid DKIM signature of ``raw`` whose domain aligns with ``author`` (a domain)."""
    dnsfunc = _dkim_dnsfunc(txt_lookup)
    count = sum(1 for name, _value in dkim.DKIM(raw).headers if name.lower() == b"dkim-signature")
    seen: list[str] = []
    for idx in range(min(count, _MAX_SIGNATURES)):
        verifier = dkim.DKIM(raw, minkey=DKIM_MIN_KEY_BITS, logger=log)
        try:
            ok = verifier.verify(idx=idx, dnsfunc=dnsfunc)
        except dkim.DKIMException as err:
            seen.append(f"signature {idx}: {err}")
            continue
        domain = (verifier.domain or b"").decode(errors="replace")
        if ok and aligned(domain, author):
            return SenderCheck(True, "dkim", f"d={domain}")
        seen.append(f"d={domain} {'not aligned' if ok else 'invalid'}")
    return unverified("no DKIM signature" if not count else "DKIM: " + "; ".join(seen))


class _SpfQuery(spf.query):
    """pyspf's query, with its DNS served by ``txt_lookup`` when one is given (TXT only)."""

    txt_lookup: TxtLookup | None = None

    def dns(self, name, qtype, cnames=None, ignore_void=False):
        if self.txt_lookup is None:
            return super().dns(name, qtype, cnames=cnames, ignore_void=ignore_void)
        if qtype not in ("TXT", "SPF"):
            return []
        return [[record] for record in self.txt_lookup(str(name).rstrip(".").lower())]


def check_spf(peer_ip: str, mail_from: str, helo: str, author: str, *,
              txt_lookup: TxtLookup | None = None) -> SenderCheck:
    """SPF ``pass`` for the connecting host and an envelope sender aligned with ``author``."""
    envelope = domain_of(mail_from)
    if not envelope:
        return unverified("no envelope sender")
    if not aligned(envelope, author):
        return unverified(f"SPF: envelope sender {envelope} is not aligned")
    query = _SpfQuery(i=peer_ip, s=parseaddr(mail_from)[1], h=helo or envelope, querytime=SPF_QUERY_SECONDS)
    query.txt_lookup = txt_lookup
    try:
        result, _code, explanation = query.check()
    except Exception as err:  # noqa: BLE001 - a broken record or lookup is simply no pass
        return unverified(f"SPF: {err}")
    if result == "pass":
        return SenderCheck(True, "spf", f"{envelope} permits {peer_ip}")
    return unverified(f"SPF {result} for {envelope}: {explanation}")


def check_message(raw: bytes, from_header: str, *, peer_ip: str | None, helo: str | None, mail_from: str | None,
                  txt_lookup: TxtLookup | None = None) -> SenderCheck:
    """DKIM first, then SPF when the connecting host is known. Blocking (DNS): run it in a thread."""
    author = author_domain(from_header)
    if author is None:
        return unverified("From: does not name exactly one address")
    found = check_dkim(raw, author, txt_lookup=txt_lookup)
    if found.verified or not peer_ip or not mail_from:
        return found
    by_spf = check_spf(peer_ip, mail_from, helo or "", author, txt_lookup=txt_lookup)
    return by_spf if by_spf.verified else unverified(f"{found.detail}; {by_spf.detail}")


# ---- the providers' verdicts -------------------------------------------------------------------


def _first(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name), None)


_SIGNATURE_DOMAIN = re.compile(r"(?:^|;)\s*d\s*=\s*([^;\s]+)", re.IGNORECASE)


def _signature_domains(headers: Sequence[tuple[str, str]]) -> list[str]:
    out = []
    for name, value in headers:
        if name.lower() == "dkim-signature":
            found = _SIGNATURE_DOMAIN.search(value.replace("\r", "").replace("\n", ""))
            out.append(found.group(1).lower() if found else "")
    return out


def check_mailgun(fields: dict[str, str], headers: Sequence[tuple[str, str]], from_header: str) -> SenderCheck:
    author = author_domain(from_header)
    if author is None:
        return unverified("From: does not name exactly one address")
    dkim_result = (fields.get("X-Mailgun-Dkim-Check-Result") or "").strip().lower()
    domains = _signature_domains(headers)
    if dkim_result == "pass" and domains and all(aligned(d, author) for d in domains):
        return SenderCheck(True, "mailgun-dkim", f"d={domains[0]}")
    spf_result = (fields.get("X-Mailgun-Spf") or "").strip().lower()
    envelope = domain_of(fields.get("sender", ""))
    if spf_result == "pass" and aligned(envelope, author):
        return SenderCheck(True, "mailgun-spf", f"envelope sender {envelope}")
    return unverified(f"Mailgun verdicts: DKIM {dkim_result or '-'} (d={','.join(domains) or '-'}), "
                      f"SPF {spf_result or '-'} (envelope sender {envelope or '-'})")


def check_postmark(headers: Sequence[tuple[str, str]], from_header: str) -> SenderCheck:
    author = author_domain(from_header)
    if author is None:
        return unverified("From: does not name exactly one address")
    tests = re.split(r"[\s,]+", (_first(headers, "x-spam-tests") or "").upper())
    if "DKIM_VALID_AU" in tests:
        return SenderCheck(True, "postmark-dkim", "DKIM_VALID_AU")
    received_spf = (_first(headers, "received-spf") or "").strip()
    envelope = domain_of(_first(headers, "return-path") or "")
    if received_spf.lower().startswith("pass") and aligned(envelope, author):
        return SenderCheck(True, "postmark-spf", f"envelope sender {envelope}")
    return unverified(f"Postmark verdicts: Received-SPF {received_spf.split(' ')[0] or '-'} "
                      f"(envelope sender {envelope or '-'}), no DKIM_VALID_AU")
