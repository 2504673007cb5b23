"""Second probe, M1 (the sender): who may speak for the ``From:`` of an email reply.

DKIM with a key made here and served by a resolver of the test (dkimpy's ``dnsfunc``), SPF with
records from the same resolver, and the verdict fields of Mailgun and Postmark. No real DNS.
"""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from codetether.replies import senderauth as sa
from tests.replies.mailauth import FakeDns, MailDomain


@pytest.fixture(scope="module")
def owner_domain() -> MailDomain:
    return MailDomain("example.com")


@pytest.fixture(scope="module")
def evil_domain() -> MailDomain:
    return MailDomain("evil.net")


def _message(sender: str = "Olive <owner@example.com>", text: str = "Blue.\n") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "reply+token@reply.ct.example.com"
    msg["Subject"] = "Re: Which color?"
    msg["Message-ID"] = "<reply-1@example.com>"
    msg.set_content(text)
    return msg


def _check(raw: bytes, dns: FakeDns, *, from_header: str = "owner@example.com", peer_ip: str | None = None,
           mail_from: str | None = None) -> sa.SenderCheck:
    return sa.check_message(raw, from_header, peer_ip=peer_ip, helo="mx.example.com", mail_from=mail_from,
                            txt_lookup=dns)


def test_dkim_signed_by_the_authors_domain_is_authenticated(owner_domain, evil_domain):
    dns = FakeDns(owner_domain, evil_domain)
    check = _check(owner_domain.sign(_message()), dns)
    assert check.verified and check.method == "dkim" and check.detail == "d=example.com"
    assert "s2026._domainkey.example.com" in dns.asked
    # A subdomain signing for its parent (and the reverse) is aligned, as DMARC's relaxed mode has it.
    mail = MailDomain("mail.example.com")
    assert _check(mail.sign(_message()), FakeDns(mail)).verified


def test_forged_from_is_refused_however_it_is_dressed(owner_domain, evil_domain):
    dns = FakeDns(owner_domain, evil_domain)
    unsigned = _message().as_bytes()
    assert not _check(unsigned, dns).verified
    # A valid signature, but of the forger's own domain.
    check = _check(evil_domain.sign(_message()), dns)
    assert not check.verified and "not aligned" in check.detail
    # The forger's key claiming the owner's domain: the published key does not match.
    assert not _check(evil_domain.sign(_message(), domain="example.com"), dns).verified
    # A genuine signature over a changed body.
    tampered = owner_domain.sign(_message()).replace(b"Blue.", b"Black")
    assert not _check(tampered, dns).verified
    # Two authors in From: nobody to align with.
    both = owner_domain.sign(_message(sender="owner@example.com, mallory@evil.net"))
    assert not _check(both, dns, from_header="owner@example.com, mallory@evil.net").verified


def test_spf_pass_of_an_aligned_envelope_sender_at_the_listener(owner_domain):
    dns = FakeDns(owner_domain, spf={"example.com": "v=spf1 ip4:192.0.2.7 -all"})
    raw = _message().as_bytes()
    check = _check(raw, dns, peer_ip="192.0.2.7", mail_from="owner@example.com")
    assert check.verified and check.method == "spf"
    assert not _check(raw, dns, peer_ip="198.51.100.9", mail_from="owner@example.com").verified
    # The forger's own domain passing SPF says nothing about example.com.
    dns.records["evil.net"] = [b"v=spf1 ip4:198.51.100.9 -all"]
    check = _check(raw, dns, peer_ip="198.51.100.9", mail_from="bounce@evil.net")
    assert not check.verified and "not aligned" in check.detail


def test_mailgun_verdicts():
    headers = [("From", "Olive <owner@example.com>")]
    fields = {"sender": "owner@example.com", "X-Mailgun-Spf": "Pass", "X-Mailgun-Dkim-Check-Result": "Fail"}
    assert sa.check_mailgun(fields, headers, "Olive <owner@example.com>").method == "mailgun-spf"
    assert not sa.check_mailgun({**fields, "X-Mailgun-Spf": "SoftFail"}, headers, "owner@example.com").verified
    assert not sa.check_mailgun({**fields, "sender": "b@evil.net"}, headers, "owner@example.com").verified
    assert not sa.check_mailgun({}, headers, "owner@example.com").verified
    signed = [*headers, ("DKIM-Signature", "v=1; a=rsa-sha256; d=example.com; s=s1; h=from; bh=x; b=y")]
    dkim_pass = {"sender": "b@evil.net", "X-Mailgun-Dkim-Check-Result": "Pass"}
    assert sa.check_mailgun(dkim_pass, signed, "owner@example.com").method == "mailgun-dkim"
    # Mailgun does not say which signature passed: a second one of another domain spoils it.
    mixed = [*signed, ("DKIM-Signature", "v=1; a=rsa-sha256; d=evil.net; s=s1; h=from; bh=x; b=y")]
    assert not sa.check_mailgun(dkim_pass, mixed, "owner@example.com").verified


def test_postmark_verdicts_come_from_its_own_topmost_headers():
    ours = [("X-Spam-Checker-Version", "SpamAssassin"), ("X-Spam-Tests", "DKIM_SIGNED,DKIM_VALID,DKIM_VALID_AU")]
    assert sa.check_postmark(ours, "owner@example.com").method == "postmark-dkim"
    spf = [("Received-SPF", "Pass (sender SPF authorized)"), ("Return-Path", "<owner@example.com>")]
    assert sa.check_postmark(spf, "owner@example.com").method == "postmark-spf"
    assert not sa.check_postmark([("Received-SPF", "Fail"), ("Return-Path", "<owner@example.com>")],
                                 "owner@example.com").verified
    # Headers the forger wrote into the message sit below Postmark's own and do not count.
    forged = [("X-Spam-Tests", "DKIM_SIGNED,SPF_PASS"), ("Received-SPF", "SoftFail"),
              ("Return-Path", "<owner@example.com>"),
              ("X-Spam-Tests", "DKIM_VALID_AU"), ("Received-SPF", "Pass")]
    assert not sa.check_postmark(forged, "owner@example.com").verified
    assert not sa.check_postmark([], "owner@example.com").verified


@pytest.mark.parametrize(("domain", "author", "ok"), [
    ("example.com", "example.com", True), ("example.com", "mail.example.com", True),
    ("mail.example.com", "example.com", True), ("example.com", "example.com.evil.net", False),
    ("evil.net", "example.com", False), ("ample.com", "example.com", False), ("", "example.com", False),
])
def test_alignment(domain, author, ok):
    assert sa.aligned(domain, author) is ok
