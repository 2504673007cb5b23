"""The dataclasses that carry input files across the Temporal boundary, and the names by which
the file cleanup workflow and its schedule are reached (pure, sandbox-safe)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FILE_CLEANUP_WORKFLOW = "FileCleanupWorkflow"
# One schedule per task queue (and so per deployment sharing a namespace).
CLEANUP_SCHEDULE_PREFIX = "codetether-file-cleanup"
# error.code of a task whose attachment URL could not be fetched and stored.
ATTACHMENT_UNAVAILABLE = "attachment_unavailable"
ATTACHMENT_ERROR = "AttachmentError"
ATTACHMENT_RETRY = "AttachmentFetchRetry"
# Folder of the workspace that holds the task's input files.
ATTACHMENTS_DIR = "attachments"


@dataclass
class Attachment:
    """One input file of a task. ``file_id`` is None for a URL the worker has not fetched yet."""

    name: str
    file_id: str | None = None
    size: int | None = None
    content_type: str | None = None
    sha256: str | None = None
    url: str | None = None

    def public(self) -> dict[str, Any]:
        return {"file_id": self.file_id, "name": self.name, "size": self.size,
                "content_type": self.content_type, "sha256": self.sha256}

    def stored(self) -> dict[str, Any]:
        """The form kept on the task row (the URL only until the file exists)."""
        out = self.public()
        if self.file_id is None and self.url:
            out["url"] = self.url
        return out

    @classmethod
    def from_stored(cls, raw: dict[str, Any]) -> "Attachment":
        return cls(**{k: raw.get(k) for k in ("name", "file_id", "size", "content_type", "sha256", "url")})


@dataclass
class FetchAttachmentsInput:
    task_id: str
    owner_id: str
    attachments: list[Attachment] = field(default_factory=list)


@dataclass
class FetchAttachmentsResult:
    attachments: list[Attachment] = field(default_factory=list)


@dataclass
class CleanupFilesInput:
    # At most this many expired files per run; the next run takes the rest.
    limit: int = 1000


@dataclass
class CleanupFilesResult:
    deleted: int = 0
