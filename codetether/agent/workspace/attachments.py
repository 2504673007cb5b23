"""A task's input files in its workspace: ``attachments/<name>``, fetched from the file storage
by whichever worker prepares the workspace, with the text of PDF and DOCX files beside them
(``attachments/<name>.txt``).

The folder belongs to the worker, not to the sandbox's uid: files 0444 in a 0555 folder, and the
file tools refuse to change anything under it (a marker in ``.git`` says the folder is the
service's), so the agent reads its inputs but cannot alter them. It is listed in
``.git/info/exclude``, so it is never part of the task's changes, patch or checkpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

from sqlalchemy import select

from codetether.core.db import Database
from codetether.core.models import StoredFile
from codetether.files.contracts import ATTACHMENTS_DIR, Attachment
from codetether.files.extract import extract_text
from codetether.files.naming import EXTRACTABLE, text_extract_path, workspace_names
from codetether.files.storage import FileStorage, StoredFileMissing

log = logging.getLogger(__name__)

# In the workspace's .git: the attachments folder is the service's (the file tools read only).
ATTACHMENTS_MARKER = "codetether-attachments"


def attachments_protected(root: str) -> bool:
    return os.path.isfile(os.path.join(root, ".git", ATTACHMENTS_MARKER))


def _exclude(root: str) -> None:
    info = Path(root, ".git", "info")
    info.mkdir(parents=True, exist_ok=True)
    exclude = info / "exclude"
    line = f"/{ATTACHMENTS_DIR}/"
    existing = exclude.read_text() if exclude.exists() else ""
    if line not in existing.splitlines():
        exclude.write_text(existing + ("" if existing.endswith("\n") or not existing else "\n") + line + "\n")
    Path(root, ".git", ATTACHMENTS_MARKER).write_text("")


async def _copy(storage: FileStorage, key: str, target: Path) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        async for block in storage.open(key):
            await asyncio.to_thread(os.write, fd, block)
    finally:
        os.close(fd)


async def place_attachments(root: str, attachments: list[Attachment], *, db: Database, storage: FileStorage,
                            owner_id: str) -> list[str]:
    """Writes the task's attachments into the workspace at ``root``; answers the paths written.
    A file that has expired or was deleted since the task was created is left out (logged)."""
    if not attachments:
        return []
    await asyncio.to_thread(_exclude, root)
    folder = Path(root, ATTACHMENTS_DIR)
    if folder.exists():
        await asyncio.to_thread(_make_writable, folder)
    folder.mkdir(mode=0o755, exist_ok=True)
    ids = [a.file_id for a in attachments if a.file_id]
    async with db.session() as s:
        rows = {r.id: r for r in (await s.execute(select(StoredFile).where(StoredFile.id.in_(ids)))).scalars()}
    written: list[str] = []
    for a, rel in zip(attachments, workspace_names(attachments)):
        row = rows.get(a.file_id or "")
        if row is None or row.user_id != owner_id:
            log.warning("attachment %s (%s) is no longer stored; left out", a.file_id, a.name)
            continue
        target = Path(root, rel)
        try:
            await _copy(storage, row.storage_key, target)
        except StoredFileMissing:
            log.warning("attachment %s has no bytes in the storage; left out", a.file_id)
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
            continue
        written.append(rel)
        text_rel = text_extract_path(a, rel)
        if text_rel is not None:
            text = await asyncio.to_thread(extract_text, target, EXTRACTABLE[a.content_type or ""])
            if text is not None:
                Path(root, text_rel).write_text(text, encoding="utf-8")
                written.append(text_rel)
    await asyncio.to_thread(_make_read_only, folder)
    return written


def _make_read_only(folder: Path) -> None:
    for entry in folder.iterdir():
        with contextlib.suppress(OSError):
            os.chmod(entry, 0o444, follow_symlinks=False)
    os.chmod(folder, 0o555)


def _make_writable(folder: Path) -> None:
    os.chmod(folder, 0o755)
    for entry in folder.iterdir():
        with contextlib.suppress(OSError):
            os.chmod(entry, 0o644, follow_symlinks=False)
