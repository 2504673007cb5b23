"""DKIM keys and DNS for the reply tests: a key made per test run, a signer, and a TXT lookup that
serves the public key and SPF records from a dict, so no test asks real DNS."""

from __future__ import annotations

import base64
from email.message import EmailMessage

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

SELECTOR = "s2026"


class MailDomain:
    """A sending domain: its DKIM key and the TXT records a resolver would answer."""

    def __init__(self, domain: str) -> None:
        self.domain = domain
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption())
        public_der = key.public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
        self.records: dict[str, list[bytes]] = {
            f"{SELECTOR}._domainkey.{domain}": [b"v=DKIM1; k=rsa; p=" + base64.b64encode(public_der)],
        }

    def sign(self, msg: EmailMessage | bytes, *, domain: str | None = None) -> bytes:
        raw = msg if isinstance(msg, bytes) else msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
        header = dkim.sign(raw, SELECTOR.encode(), (domain or self.domain).encode(), self.private_pem,
                           include_headers=[b"from", b"to", b"subject", b"message-id"])
        return header + raw


class FakeDns:
    """TXT records of a few domains (``txt_lookup`` of :mod:`codetether.replies.senderauth`)."""

    def __init__(self, *domains: MailDomain, spf: dict[str, str] | None = None) -> None:
        self.records: dict[str, list[bytes]] = {}
        for d in domains:
            self.records.update(d.records)
        for name, record in (spf or {}).items():
            self.records.setdefault(name, []).append(record.encode())
        self.asked: list[str] = []

    def __call__(self, name: str) -> list[bytes]:
        self.asked.append(name)
        return list(self.records.get(name.lower(), []))
