"""File activities: fetching a task's attachment URLs into the storage, and deleting expired files.

``fetch_attachments`` runs on the shared task queue when a task with URL attachments starts (see
``codetether/agent/loop.py``). Each URL becomes a file of the task's owner, with an id derived
from the task and the item's position, so a retried activity finds what an earlier attempt stored
instead of storing it twice. The task row's ``attachments`` then lists the stored files.
``cleanup_expired_files`` is what the cleanup schedule runs (``codetether/files/workflow.py``).
"""

from __future__ import annotations

import hashlib
import logging

import httpx
from sqlalchemy import update
from temporalio import activity
from temporalio.exceptions import ApplicationError

from codetether.core.config import Settings
from codetether.core.db import Database
from codetether.core.errors import ServiceError
from codetether.core.models import StoredFile, Task
from codetether.core.netguard import webhook_http_client
from codetether.files.contracts import (
    ATTACHMENT_ERROR,
    ATTACHMENT_RETRY,
    ATTACHMENT_UNAVAILABLE,
    Attachment,
    CleanupFilesInput,
    CleanupFilesResult,
    FetchAttachmentsInput,
    FetchAttachmentsResult,
)
from codetether.files.fetch import FetchRefused, open_download
from codetether.files.service import as_attachment, delete_expired, store_stream
from codetether.files.storage import FileStorage

log = logging.getLogger(__name__)


def attachment_file_id(task_id: str, index: int, url: str) -> str:
    digest = hashlib.sha256(f"{task_id}/{index}/{url}".encode()).hexdigest()[:26]
    return f"file_{digest}"


def _refused(index: int, attachment: Attachment, message: str, *, retryable: bool = False) -> ApplicationError:
    return ApplicationError(
        f"attachment {index + 1} ({attachment.name}) could not be fetched: {message}",
        {"code": ATTACHMENT_UNAVAILABLE},
        # A refusal is final (its type is non-retryable in the workflow's policy); a server error
        # or a dropped connection is tried again.
        type=ATTACHMENT_RETRY if retryable else ATTACHMENT_ERROR,
        non_retryable=not retryable,
    )


class FileActivities:
    def __init__(self, *, settings: Settings, db: Database, storage: FileStorage) -> None:
        self.settings = settings
        self.db = db
        self.storage = storage

    def _client(self) -> httpx.AsyncClient:
        return webhook_http_client(allow_private=self.settings.webhook_allow_private,
                                   timeout=self.settings.attachment_fetch_timeout_seconds)

    @activity.defn
    async def fetch_attachments(self, inp: FetchAttachmentsInput) -> FetchAttachmentsResult:
        out: list[Attachment] = []
        async with self._client() as client:
            for i, a in enumerate(inp.attachments):
                if a.file_id is not None or not a.url:
                    out.append(a)
                    continue
                out.append(await self._fetch_one(client, inp, i, a))
        async with self.db.write_session() as s:
            await s.execute(update(Task).where(Task.id == inp.task_id).values(attachments=[a.stored() for a in out]))
            await s.commit()
        return FetchAttachmentsResult(attachments=out)

    async def _fetch_one(self, client: httpx.AsyncClient, inp: FetchAttachmentsInput, index: int, a: Attachment) -> Attachment:
        file_id = attachment_file_id(inp.task_id, index, a.url or "")
        async with self.db.session() as s:
            existing = await s.get(StoredFile, file_id)
        if existing is not None:
            return as_attachment(existing)
        try:
            download = await open_download(client, a.url or "", allow_private=self.settings.webhook_allow_private)
        except FetchRefused as err:
            raise _refused(index, a, str(err), retryable=err.retryable) from None
        try:
            row = await store_stream(
                self.db, self.storage, self.settings, inp.owner_id, name=a.name, claimed_type=download.content_type,
                chunks=download.chunks(), declared_size=download.declared_size, file_id=file_id,
            )
        except ServiceError as err:
            raise _refused(index, a, err.message) from None
        except httpx.HTTPError as err:
            raise _refused(index, a, f"the download broke off ({err.__class__.__name__})", retryable=True) from None
        finally:
            await download.response.aclose()
        return as_attachment(row)

    @activity.defn
    async def cleanup_expired_files(self, inp: CleanupFilesInput) -> CleanupFilesResult:
        deleted = await delete_expired(self.db, self.storage, limit=inp.limit)
        if deleted:
            log.info("deleted %d expired file(s)", deleted)
        return CleanupFilesResult(deleted=deleted)
