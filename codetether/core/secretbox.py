"""Encryption at rest for codebase credentials and webhook signing secrets (``cryptography``'s
Fernet: AES-128-CBC + HMAC).

The key is ``CODETETHER_CODEBASE_KEY`` (``Fernet.generate_key()`` output); ``codetether dev``
generates one into the data dir. Without a key, credentials cannot be stored (422) and a worker
cannot use stored ones (the task fails with ``credentials_unavailable``).

Webhook signing secrets (``codetether/webhooks/``) are sealed with :func:`seal_text` when a key is
configured and kept as they are otherwise; :func:`open_text` reads both, so rows written before
the key (or before migration ``sec02``, which seals them) keep working.
"""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from codetether.core.config import Settings
from codetether.core.datadir import write_private

KEY_FILE = "codebase.key"
# Marks a sealed text value; a caller-chosen secret may not start with it.
SEALED_PREFIX = "sealed:v1:"


class SecretBoxUnavailable(Exception):
    """No key configured, or the stored value was sealed with another key."""


def _fernet(settings: Settings) -> Fernet:
    if not settings.codebase_key:
        raise SecretBoxUnavailable("CODETETHER_CODEBASE_KEY is not set, so credentials cannot be stored")
    try:
        return Fernet(settings.codebase_key.encode())
    except (ValueError, TypeError):
        raise SecretBoxUnavailable("CODETETHER_CODEBASE_KEY is not a valid Fernet key") from None


def seal(settings: Settings, value: dict) -> str:
    return _fernet(settings).encrypt(json.dumps(value, separators=(",", ":")).encode()).decode()


def unseal(settings: Settings, token: str) -> dict:
    try:
        return json.loads(_fernet(settings).decrypt(token.encode()))
    except InvalidToken:
        raise SecretBoxUnavailable("the stored credentials were sealed with another key") from None


def ensure_key_file(data_dir: Path) -> str:
    """The data dir's key, generated on first use (``codetether dev``)."""
    path = data_dir / KEY_FILE
    if path.is_file():
        return path.read_text().strip()
    key = Fernet.generate_key().decode()
    write_private(path, key + "\n")
    return key


def seal_text(settings: Settings, value: str) -> str:
    """``value`` sealed (``sealed:v1:`` + a Fernet token) when a key is configured, else as is."""
    if not settings.codebase_key or value.startswith(SEALED_PREFIX):
        return value
    return SEALED_PREFIX + _fernet(settings).encrypt(value.encode()).decode()


def open_text(settings: Settings, stored: str) -> str:
    """The plain value of a :func:`seal_text` result, or of a value stored before sealing."""
    if not stored.startswith(SEALED_PREFIX):
        return stored
    try:
        return _fernet(settings).decrypt(stored[len(SEALED_PREFIX):].encode()).decode()
    except InvalidToken:
        raise SecretBoxUnavailable("the stored secret was sealed with another key") from None
