"""Idempotency records: the database side of the ``Idempotency-Key`` header (its HTTP side is
codetether/api/edge/idempotency.py; task creation uses it too, codetether/tasks/launch.py).

One row per (scope, key) in ``idempotency_keys``. Inserting it is the lock: the unique constraint
lets exactly one of many concurrent requests with the same key win, on SQLite and PostgreSQL
alike. The winner holds the lock until ``locked_until``; if it crashes, a retry after that moment
takes the row over (a compare-and-set on ``locked_until``) and reuses the resource id reserved in
it, so the work it repeats is the same work. The reservation costs no extra write: the claim
stores a random ULID in ``resource_id`` and a created resource's id is that ULID under the
resource's prefix (``task_<ulid>``), the same for every request that holds the row. Finished rows keep the first response for
:data:`RETENTION` (at least 24 h, as the contract requires) and are replayed.

A create can do with one write instead (:func:`claim_with_row`): the claim is inserted in the
transaction that inserts the created row, with ``state = "created"``, and the response is rebuilt
from that row when the key comes back. On SQLite, key writes go through the database's in-process
write queue (:meth:`codetether.core.db.Database.write_connection`), so concurrent keyed requests wait in
memory rather than in SQLite's busy handler, which sleeps up to 100 ms a turn.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, select, text, update
from sqlalchemy.exc import IntegrityError

from codetether.core.db import Database
from codetether.core.ids import as_utc, ulid, utcnow
from codetether.core.models import IdempotencyRecord

RETENTION = timedelta(hours=24)
# How long a request may hold a key before a retry may assume it crashed and take over
# (CODETETHER_IDEMPOTENCY_LOCK_SECONDS overrides it through the ``lock_timeout`` argument).
LOCK_TIMEOUT = timedelta(seconds=60)
MAX_KEY_LENGTH = 255


class Outcome(enum.Enum):
    PROCEED = "proceed"  # the caller holds the lock and runs the request
    REPLAY = "replay"  # a finished response with the same fingerprint exists
    IN_FLIGHT = "in_flight"  # another request with this key is running
    MISMATCH = "mismatch"  # the key was used for a different request
    CREATED = "created"  # the key's request stored its resource with the claim: answer from it


@dataclass
class StoredResponse:
    status: int
    body: bytes
    headers: dict[str, str]


@dataclass
class Claim:
    outcome: Outcome
    record_id: int | None = None
    # The ULID behind any resource this request creates (see resource_id()).
    resource_seed: str | None = None
    # True when a crashed request's row was taken over: its resource may already exist.
    taken_over: bool = False
    response: StoredResponse | None = None
    # CREATED only: the claim is younger than the lock timeout, so its request may still be
    # between its commit and its workflow start.
    recent: bool = False
    # Where the first use of the key went (for the mismatch message).
    first_method: str | None = None
    first_path: str | None = None


async def _relaxed_commit(db: Database, conn) -> None:
    """On PostgreSQL, lets this transaction commit without waiting for its WAL flush.

    Safe here because nothing depends on these rows alone surviving a crash: WAL is flushed in
    order, so the task row written after a claim (a normal, flushed commit) carries the claim with
    it; and a lost "done" record leaves the row in flight, so a retry takes it over after the lock
    expires and reuses the same task id. It saves two fsyncs per keyed request.
    """
    if not db.is_sqlite:
        await conn.execute(text("SET LOCAL synchronous_commit TO OFF"))


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


_TABLE = IdempotencyRecord.__table__
# Built once, values bound per call: constructing these per request costs more CPU than running them.
_INSERT_CLAIM = _TABLE.insert().returning(_TABLE.c.id)
_COMPLETE = _TABLE.update().where(_TABLE.c.id == bindparam("record_id"))


def _claim_values(
    scope: str, key: str, method: str, path: str, fp: str, seed: str, lock_timeout: timedelta | None
) -> dict[str, Any]:
    now = utcnow()
    return {
        "scope": scope,
        "key": key,
        "method": method,
        "path": path[:500],
        "fingerprint": fp,
        # "created": stored together with its resource (claim_with_row), which is the response.
        "state": "in_flight" if lock_timeout is not None else "created",
        "resource_id": seed,
        "created_at": now,
        "locked_until": now + lock_timeout if lock_timeout is not None else None,
        "expires_at": now + RETENTION,
    }


async def claim(
    db: Database, scope: str, key: str, method: str, path: str, fp: str, *, lock_timeout: timedelta = LOCK_TIMEOUT
) -> Claim:
    """Takes the key for this request, or says why not (replay, in flight, reused)."""

    async def insert() -> Claim:
        seed = ulid()
        # A bare connection, not an ORM session: this runs on every keyed POST.
        async with db.write_connection() as conn:
            await _relaxed_commit(db, conn)
            record_id = (
                await conn.execute(_INSERT_CLAIM, _claim_values(scope, key, method, path, fp, seed, lock_timeout))
            ).scalar_one()
        return Claim(Outcome.PROCEED, record_id=record_id, resource_seed=seed)

    return await _insert_or_existing(db, scope, key, fp, lock_timeout, insert)


async def _insert_or_existing(db: Database, scope: str, key: str, fp: str, lock_timeout: timedelta, insert) -> Claim:
    """``insert()`` the key's row; when another request's row is there, what it means for this one."""
    for _ in range(3):
        try:
            return await insert()
        except IntegrityError:
            pass
        found = await _existing(db, scope, key, fp, lock_timeout)
        if found is not None:
            return found
    return Claim(Outcome.IN_FLIGHT)


async def claim_with_row(
    db: Database,
    scope: str,
    key: str,
    method: str,
    path: str,
    fp: str,
    seed: str,
    row: tuple[Any, dict[str, Any]],
    *,
    lock_timeout: timedelta = LOCK_TIMEOUT,
) -> Claim:
    """Takes the key and inserts the resource it creates (``row``: an insert statement and its
    values, the resource's id derived from ``seed``) in one transaction.

    Either both are stored or neither is, so a key whose row is committed always has its resource:
    a retry finds the resource and answers from it (nothing else has to be written for the
    response), and a request that dies before the commit leaves the key as good as new. The
    result is a :class:`Claim` as from :func:`claim`, where ``PROCEED`` with ``taken_over`` False
    means both rows were written by this call and ``CREATED`` that an earlier request's were.
    Such a claim is never locked (``state = "created"``): its request needs nothing more stored.
    """
    statement, values = row

    async def insert() -> Claim:
        async with db.write_connection() as conn:
            record_id = (
                await conn.execute(_INSERT_CLAIM, _claim_values(scope, key, method, path, fp, seed, None))
            ).scalar_one()
            await conn.execute(statement, values)
        return Claim(Outcome.PROCEED, record_id=record_id, resource_seed=seed)

    return await _insert_or_existing(db, scope, key, fp, lock_timeout, insert)


async def _existing(db: Database, scope: str, key: str, fp: str, lock_timeout: timedelta) -> Claim | None:
    """What an existing row for the key means for this request; None when it is gone (deleted
    meanwhile, or expired and deleted here), so the caller inserts again."""
    async with db.session() as s:
        existing = (
            await s.execute(select(IdempotencyRecord).where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key))
        ).scalar_one_or_none()
        if existing is None:
            return None  # deleted meanwhile (released or expired): try the insert again
        now = utcnow()
        if as_utc(existing.expires_at) <= now:
            await s.execute(
                delete(IdempotencyRecord)
                .where(IdempotencyRecord.id == existing.id, IdempotencyRecord.expires_at <= now)
                # The loaded row (naive datetimes on SQLite) must not be evaluated in Python.
                .execution_options(synchronize_session=False)
            )
            await s.commit()
            return None
        if existing.fingerprint != fp:
            return Claim(Outcome.MISMATCH, first_method=existing.method, first_path=existing.path)
        if existing.state == "done":
            return Claim(Outcome.REPLAY, record_id=existing.id, response=_stored(existing))
        if existing.state == "created":
            recent = as_utc(existing.created_at) + lock_timeout > now
            return Claim(Outcome.CREATED, record_id=existing.id, resource_seed=existing.resource_id, recent=recent)
        locked_until = as_utc(existing.locked_until)
        if locked_until is not None and locked_until > now:
            return Claim(Outcome.IN_FLIGHT, record_id=existing.id, resource_seed=existing.resource_id)
        # The holder crashed or gave up: take the lock over, unless another retry just did.
        taken = await s.execute(
            update(IdempotencyRecord)
            .where(
                IdempotencyRecord.id == existing.id,
                IdempotencyRecord.state == "in_flight",
                IdempotencyRecord.locked_until == existing.locked_until,
            )
            .values(locked_until=now + lock_timeout)
            .execution_options(synchronize_session=False)
        )
        await s.commit()
        if taken.rowcount == 1:
            return Claim(Outcome.PROCEED, record_id=existing.id, resource_seed=existing.resource_id or ulid(), taken_over=True)
        return Claim(Outcome.IN_FLIGHT, record_id=existing.id, resource_seed=existing.resource_id)


def resource_id(seed: str, prefix: str) -> str:
    """The id of the resource a keyed request creates: the same on every retry of it."""
    return f"{prefix}_{seed}"


async def complete(db: Database, record_id: int, response: StoredResponse) -> None:
    """Stores the first response; later requests with the key replay it."""
    async with db.write_connection() as conn:
        await _relaxed_commit(db, conn)
        await conn.execute(
            _COMPLETE,
            {
                "record_id": record_id,
                "state": "done",
                "response_status": response.status,
                "response_body": response.body.decode("utf-8", errors="replace"),
                "response_headers": response.headers,
                "locked_until": None,
            },
        )


async def forget(db: Database, record_id: int) -> None:
    """Deletes a key's row (a ``created`` claim whose resource is gone), so the key is new again."""
    async with db.write_connection() as conn:
        await conn.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))


async def release(db: Database, record_id: int, *, resource_reserved: bool) -> None:
    """Gives the key back without a stored response (a server error or an unvalidated request).

    If the request reserved its resource id, the row is kept, unlocked, so a retry reuses that id:
    the resource may already exist. Otherwise the row goes and the key is as good as new.
    """
    async with db.session() as s:
        if resource_reserved:
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
