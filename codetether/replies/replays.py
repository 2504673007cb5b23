"""Each signed post of an email provider counts once: the signatures already taken, until they
would be refused as too old anyway (``inbound_webhook_signatures``).

Mailgun signs ``timestamp + token`` and not the message, so a captured post could otherwise be
sent again, with any body, for as long as its timestamp is fresh. ``api/inbound/`` calls
:func:`take` once the signature checks out and :func:`give_back` when it answers 503 (the provider
retries that post with the same signature, and the retry must pass).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from codetether.core.db import Database
from codetether.core.ids import utcnow
from codetether.core.models import InboundWebhookSignature


def digest(provider: str, *parts: str) -> str:
    return hashlib.sha256("\x00".join((provider, *parts)).encode()).hexdigest()


async def take(db: Database, key: str, expires_at: datetime) -> bool:
    """Records the signature ``key``; False when it was seen before."""
    try:
        async with db.session() as s:
            # Forget what has expired, so the table stays as small as the window.
            await s.execute(delete(InboundWebhookSignature).where(InboundWebhookSignature.expires_at < utcnow()))
            s.add(InboundWebhookSignature(digest=key, expires_at=expires_at))
            await s.commit()
    except IntegrityError:
        return False
    return True


async def give_back(db: Database, key: str) -> None:
    async with db.session() as s:
        await s.execute(delete(InboundWebhookSignature).where(InboundWebhookSignature.digest == key))
        await s.commit()
