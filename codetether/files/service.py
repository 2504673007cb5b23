"""The rules of input files, shared by every face and by the worker.

:func:`store_stream` takes the bytes of a new file as an async iterator (an upload's multipart
part, an attachment URL's body) and streams them to the storage while hashing and counting: past
``files_max_bytes`` it stops with ``413 file_too_large``, and past the owner's quota with
``413 file_quota_exceeded``; either way nothing is kept. Another user's file is 404 here
(:func:`load_file`) and ``422 file_not_found`` when a task names it (:func:`check_attachments`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import delete, func, select

from codetether.core.config import Settings
from codetether.core.db import Database, load_owned
from codetether.core.errors import ServiceError
from codetether.core.ids import as_utc, iso, new_id, utcnow
from codetether.core.models import StoredFile
from codetether.core.netguard import UnsafeURL, validate_webhook_url
from codetether.files.contracts import Attachment
from codetether.files.naming import clean_name
from codetether.files.sniff import HEAD_BYTES, sniff
from codetether.files.storage import FileStorage

log = logging.getLogger(__name__)

MAX_ATTACHMENTS = 10
FILE_ID_PREFIX = "file"


def too_large(limit: int) -> ServiceError:
    return ServiceError(413, "file_too_large", f"the file is larger than the limit of {limit} bytes ({limit // (1024 * 1024)} MiB)")


def quota_exceeded(quota: int) -> ServiceError:
    return ServiceError(
        413, "file_quota_exceeded",
        f"storing this file would pass your quota of {quota} bytes; delete files you no longer need "
        "(DELETE /v1/automation/files/{file_id}) or wait for older ones to expire",
    )


def file_to_dict(row: StoredFile) -> dict[str, Any]:
    return {
        "file_id": row.id, "name": row.name, "size": row.size, "content_type": row.content_type,
        "sha256": row.sha256, "created_at": iso(row.created_at), "expires_at": iso(row.expires_at),
    }


def as_attachment(row: StoredFile) -> Attachment:
    return Attachment(name=row.name, file_id=row.id, size=row.size, content_type=row.content_type, sha256=row.sha256)


class _Meter:
    """Passes chunks through while counting, hashing and keeping the first bytes for sniffing;
    raises ``file_too_large`` the moment the count passes the limit."""

    def __init__(self, chunks: AsyncIterable[bytes], limit: int) -> None:
        self.chunks, self.limit = chunks, limit
        self.size = 0
        self.hash = hashlib.sha256()
        self.head = b""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.chunks:
            if not chunk:
                continue
            self.size += len(chunk)
            if self.size > self.limit:
                raise too_large(self.limit)
            if len(self.head) < HEAD_BYTES:
                self.head += chunk[: HEAD_BYTES - len(self.head)]
            self.hash.update(chunk)
            yield chunk


async def used_bytes(db: Database, owner_id: str) -> int:
    async with db.session() as s:
        total = await s.scalar(
            select(func.coalesce(func.sum(StoredFile.size), 0)).where(
                StoredFile.user_id == owner_id, StoredFile.expires_at > utcnow()
            )
        )
    return int(total or 0)


async def store_stream(
    db: Database, storage: FileStorage, settings: Settings, owner_id: str, *, name: str | None,
    claimed_type: str | None, chunks: AsyncIterable[bytes], declared_size: int | None = None,
    file_id: str | None = None,
) -> StoredFile:
    """Stores a new file of ``owner_id`` from ``chunks``; the row once the bytes are complete."""
    limit, quota = settings.files_max_bytes, settings.files_quota_bytes
    if declared_size is not None and declared_size > limit:
        raise too_large(limit)
    used = await used_bytes(db, owner_id)
    if used + (declared_size or 0) > quota:
        raise quota_exceeded(quota)
    file_id = file_id or new_id(FILE_ID_PREFIX)
    key = f"{owner_id}/{file_id}"
    meter = _Meter(chunks, limit)
    await storage.save(key, meter)
    try:
        if used + meter.size > quota:
            raise quota_exceeded(quota)
        now = utcnow()
        display = clean_name(name)
        row = StoredFile(
            id=file_id, user_id=owner_id, name=display, size=meter.size,
            content_type=sniff(meter.head, display, claimed_type), sha256=meter.hash.hexdigest(),
            storage_key=key, created_at=now, expires_at=now + timedelta(seconds=settings.files_ttl_seconds),
        )
        async with db.write_session() as s:
            s.add(row)
            await s.commit()
    except BaseException:
        await storage.delete(key)
        raise
    return row


def _not_found(file_id: str) -> ServiceError:
    return ServiceError(404, "file_not_found", f"no file {file_id!r}")


async def load_file(db: Database, owner_id: str, file_id: str) -> StoredFile:
    """The caller's unexpired file; 404 whether it is missing, expired or someone else's."""
    now = utcnow()
    return await load_owned(
        db, StoredFile, file_id, lambda f: f.user_id == owner_id and as_utc(f.expires_at) > now, _not_found(file_id)
    )


async def delete_file(db: Database, storage: FileStorage, owner_id: str, file_id: str) -> None:
    row = await load_file(db, owner_id, file_id)
    async with db.write_session() as s:
        await s.execute(delete(StoredFile).where(StoredFile.id == row.id))
        await s.commit()
    await storage.delete(row.storage_key)


async def delete_expired(db: Database, storage: FileStorage, *, limit: int = 1000) -> int:
    """Deletes up to ``limit`` expired files, bytes first then rows; answers how many."""
    async with db.session() as s:
        rows = (await s.execute(
            select(StoredFile.id, StoredFile.storage_key).where(StoredFile.expires_at <= utcnow())
            .order_by(StoredFile.expires_at).limit(limit)
        )).all()
    deleted = 0
    for file_id, key in rows:
        try:
            await storage.delete(key)
        except Exception:  # noqa: BLE001 - kept for the next run
            log.exception("deleting the bytes of expired file %s failed", file_id)
            continue
        async with db.write_session() as s:
            await s.execute(delete(StoredFile).where(StoredFile.id == file_id))
            await s.commit()
        deleted += 1
    return deleted


# ---- task attachments (CONTRACT §11) -----------------------------------------------------------


def _invalid(index: int, code: str, message: str) -> ServiceError:
    field = f"attachments.{index}"
    return ServiceError(422, code, f"{field}: {message}", errors=[{"field": field, "message": message, "type": code}])


def name_from_url(url: str) -> str:
    path = unquote(urlsplit(url).path or "")
    return clean_name(path, default="download")


async def check_attachments(db: Database, settings: Settings, owner_id: str, specs: Sequence[dict[str, Any]]) -> list[Attachment]:
    """The attachments of a new task from the caller's ``{"file_id"}`` and ``{"url", "name"?}``
    items: each file must be the caller's and unexpired (``422 file_not_found``), each URL must
    pass the webhook address rules (``422 invalid_attachment_url``). URLs are fetched later, by
    the worker (:mod:`codetether.files.activities`)."""
    if len(specs) > MAX_ATTACHMENTS:
        raise ServiceError(422, "too_many_attachments", f"attachments: at most {MAX_ATTACHMENTS} files",
                           errors=[{"field": "attachments", "message": f"at most {MAX_ATTACHMENTS}", "type": "too_many_attachments"}])
    out: list[Attachment] = []
    for i, spec in enumerate(specs):
        file_id, url = spec.get("file_id"), spec.get("url")
        if (file_id is None) == (url is None):
            raise _invalid(i, "validation_error", "give either file_id or url")
        if file_id is not None:
            try:
                row = await load_file(db, owner_id, str(file_id))
            except ServiceError:
                raise _invalid(i, "file_not_found", f"no file {file_id!r}") from None
            out.append(as_attachment(row))
            continue
        try:
            await validate_webhook_url(str(url), allow_private=settings.webhook_allow_private)
        except UnsafeURL as err:
            raise _invalid(i, "invalid_attachment_url", str(err)) from None
        out.append(Attachment(name=clean_name(spec.get("name")) if spec.get("name") else name_from_url(str(url)), url=str(url)))
    return out
