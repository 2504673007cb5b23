"""Credentials: API key minting and hashing, password hashing, scopes.

API keys are ``ct_`` + 32 random bytes (url-safe base64). Only their SHA-256 is stored: the key
itself has 256 bits of entropy, so a fast hash is safe and lets a lookup be one indexed query.
Passwords are hashed with Argon2id.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

API_KEY_PREFIX = "ct_"

SCOPES: dict[str, str] = {
    "tasks:read": "Read your tasks and their events",
    "tasks:write": "Create and cancel tasks",
    "messages:write": "Answer tasks and send them messages",
    "codebases:read": "List your codebases",
    "webhooks:manage": "Manage webhook subscriptions",
    "account:manage": "Manage API keys and OAuth clients (first-party credentials only)",
    "codebases:write": "Register, change and remove your codebases",
    "partner:manage": "Manage a partner's end users and act for them (partner clients only)",
}
# Scopes only a partner's OAuth client holds (``codetether partners create``): never an API key,
# a console session or any other client.
PARTNER_SCOPES: frozenset[str] = frozenset({"partner:manage"})
# Every scope a user's own credential may hold.
ALL_SCOPES: tuple[str, ...] = tuple(s for s in SCOPES if s not in PARTNER_SCOPES)
# Scopes only a first-party credential (an API key, a console session) may hold: an OAuth client
# can never be registered with them, request them or receive them in a token.
FIRST_PARTY_SCOPES: frozenset[str] = frozenset({"account:manage"})
# What OAuth clients may be granted.
OAUTH_SCOPES: tuple[str, ...] = tuple(s for s in ALL_SCOPES if s not in FIRST_PARTY_SCOPES)
# What an access token may carry: OAUTH_SCOPES, and partner:manage for a partner's client.
TOKEN_SCOPES: tuple[str, ...] = OAUTH_SCOPES + tuple(s for s in SCOPES if s in PARTNER_SCOPES)

_hasher = PasswordHasher()


def generate_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def key_display_prefix(key: str) -> str:
    return key[:10]


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def parse_scopes(value: str | list[str] | None, *, default: tuple[str, ...] = ALL_SCOPES) -> list[str]:
    """Parses a comma/space separated scope list; raises ValueError on an unknown scope."""
    if value is None:
        return list(default)
    items = value if isinstance(value, list) else value.replace(",", " ").split()
    scopes: list[str] = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        if item not in ALL_SCOPES:
            raise ValueError(f"unknown scope {item!r}; known scopes: {', '.join(ALL_SCOPES)}")
        if item not in scopes:
            scopes.append(item)
    return scopes
