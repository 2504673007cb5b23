"""Idempotency records: the database side of the ``Idempotency-Key`` header (see api/idempotency.py).

One row per (scope, key) in ``idempotency_keys``. Inserting it is the lock: the unique constraint
lets exactly one of many concurrent requests with the same key win, on SQLite and PostgreSQL
alike. The winner holds the lock until ``locked_until``; if it crashes, a retry after that moment
takes the row over (a compare-and-set on ``locked_until``) and reuses the resource id reserved in
it, so the work it repeats is the same work. Finished rows keep the first response for
:data:`RETENTION` (at least 24 h, as the contract requires) and are replayed.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from core.db import Database
from core.ids import as_utc, new_id, utcnow
from core.models import IdempotencyRecord

RETENTION = timedelta(hours=24)
# How long a request may hold a key before a retry may assume it crashed and take over.
LOCK_TIMEOUT = timedelta(seconds=60)
MAX_KEY_LENGTH = 255


class Outcome(enum.Enum):
    PROCEED = "proceed"  # the caller holds the lock and runs the request
    REPLAY = "replay"  # a finished response with the same fingerprint exists
    IN_FLIGHT = "in_flight"  # another request with this key is running
    MISMATCH = "mismatch"  # the key was used for a different request


@dataclass
class StoredResponse:
    status: int
    body: bytes
    headers: dict[str, str]


@dataclass
class Claim:
    outcome: Outcome
    record_id: int | None = None
    response: StoredResponse | None = None
    # Where the first use of the key went (for the mismatch message).
    first_method: str | None = None
    first_path: str | None = None


def fingerprint(method: str, path: str, body: bytes) -> str:
    """Identifies the request a key was first used for: method, path and a hash of the body."""
    h = hashlib.sha256()
    h.update(method.upper().encode())
    h.update(b"\n")
    h.update(path.encode())
    h.update(b"\n")
    h.update(hashlib.sha256(body).digest())
    return h.hexdigest()


def _stored(row: IdempotencyRecord) -> StoredResponse:
    return StoredResponse(
        status=row.response_status or 200,
        body=(row.response_body or "").encode("utf-8"),
        headers=dict(row.response_headers or {}),
    )


async def claim(db: Database, scope: str, key: str, method: str, path: str, fp: str) -> Claim:
    """Takes the key for this request, or says why not (replay, in flight, reused)."""
    for _ in range(3):
        now = utcnow()
        async with db.session() as s:
            row = IdempotencyRecord(
                scope=scope,
                key=key,
                method=method,
                path=path[:500],
                fingerprint=fp,
                state="in_flight",
                created_at=now,
                locked_until=now + LOCK_TIMEOUT,
                expires_at=now + RETENTION,
            )
            s.add(row)
            try:
                await s.commit()
                return Claim(Outcome.PROCEED, record_id=row.id)
            except IntegrityError:
                await s.rollback()
        async with db.session() as s:
            existing = (
                await s.execute(select(IdempotencyRecord).where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key))
            ).scalar_one_or_none()
            if existing is None:
                continue  # deleted meanwhile (released or expired): try the insert again
            now = utcnow()
            if as_utc(existing.expires_at) <= now:
                await s.execute(
                    delete(IdempotencyRecord).where(
                        IdempotencyRecord.id == existing.id, IdempotencyRecord.expires_at <= now
                    )
                )
                await s.commit()
                continue
            if existing.fingerprint != fp:
                return Claim(Outcome.MISMATCH, first_method=existing.method, first_path=existing.path)
            if existing.state == "done":
                return Claim(Outcome.REPLAY, record_id=existing.id, response=_stored(existing))
            locked_until = as_utc(existing.locked_until)
            if locked_until is not None and locked_until > now:
                return Claim(Outcome.IN_FLIGHT, record_id=existing.id)
            # The holder crashed or gave up: take the lock over, unless another retry just did.
            taken = await s.execute(
                update(IdempotencyRecord)
                .where(
                    IdempotencyRecord.id == existing.id,
                    IdempotencyRecord.state == "in_flight",
                    IdempotencyRecord.locked_until == existing.locked_until,
                )
                .values(locked_until=now + LOCK_TIMEOUT)
            )
            await s.commit()
            if taken.rowcount == 1:
                return Claim(Outcome.PROCEED, record_id=existing.id)
            return Claim(Outcome.IN_FLIGHT, record_id=existing.id)
    return Claim(Outcome.IN_FLIGHT)


async def reserve_resource_id(db: Database, record_id: int, prefix: str) -> str:
    """The id of the resource this request creates: reserved once, the same on every retry."""
    async with db.session() as s:
        current = await s.scalar(select(IdempotencyRecord.resource_id).where(IdempotencyRecord.id == record_id))
        if current:
            return current
        candidate = new_id(prefix)
        await s.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.id == record_id, IdempotencyRecord.resource_id.is_(None))
            .values(resource_id=candidate)
        )
        await s.commit()
        # Read back: only the holder of the lock reserves, but the stored value is the truth.
        return await s.scalar(select(IdempotencyRecord.resource_id).where(IdempotencyRecord.id == record_id)) or candidate


async def complete(db: Database, record_id: int, response: StoredResponse) -> None:
    """Stores the first response; later requests with the key replay it."""
    async with db.session() as s:
        await s.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.id == record_id)
            .values(
                state="done",
                response_status=response.status,
                response_body=response.body.decode("utf-8", errors="replace"),
                response_headers=response.headers,
                locked_until=None,
            )
        )
        await s.commit()


async def release(db: Database, record_id: int) -> None:
    """Gives the key back without a stored response (a server error or an unvalidated request).

    A row that reserved a resource id is kept, unlocked, so a retry reuses that id: the resource
    may already exist. Otherwise the row goes and the key is as good as new.
    """
    async with db.session() as s:
        reserved = await s.scalar(select(IdempotencyRecord.resource_id).where(IdempotencyRecord.id == record_id))
        if reserved:
            await s.execute(
                update(IdempotencyRecord).where(IdempotencyRecord.id == record_id).values(locked_until=utcnow())
            )
        else:
            await s.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))
        await s.commit()


async def purge_expired(db: Database, now: datetime | None = None) -> int:
    """Deletes records past their retention; returns how many."""
    async with db.session() as s:
        result = await s.execute(delete(IdempotencyRecord).where(IdempotencyRecord.expires_at < (now or utcnow())))
        await s.commit()
        return result.rowcount or 0


def header_subset(headers: list[tuple[bytes, bytes]], skip: frozenset[str]) -> dict[str, str]:
    out: dict[str, Any] = {}
    for k, v in headers:
        name = k.decode("latin-1").lower()
        if name in skip or name.startswith("x-ratelimit-"):
            continue
        out[name] = v.decode("latin-1")
    return out
