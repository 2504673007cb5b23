"""Input files in a private folder of this machine: ``<data dir>/files/<user>/<file>``, folders
0700 and files 0600, each written under a temporary name and renamed once complete."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path

from codetether.core.datadir import DIR_MODE, FILE_MODE, secure_data_dir
from codetether.core.ids import ulid
from codetether.files.storage import StoredFileMissing, check_key

READ_CHUNK = 1024 * 1024


class LocalStorage:
    """Files under a private folder of this machine (the data dir by default)."""

    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        self._root_ready = False

    def _path(self, key: str) -> Path:
        check_key(key)
        return self.root / key

    def _prepare_dir(self, folder: Path) -> None:
        if not self._root_ready:
            self.root.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            secure_data_dir(self.root)
            self._root_ready = True
        folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)

    async def save(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        final = self._path(key)
        await asyncio.to_thread(self._prepare_dir, final.parent)
        tmp = final.with_name(f".{final.name}.{ulid()}.part")
        fd = await asyncio.to_thread(os.open, tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
        size = 0
        try:
            # Small chunks are gathered so each thread hop writes a useful amount.
            pending: list[bytes] = []
            pending_size = 0
            async for chunk in chunks:
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size >= READ_CHUNK:
                    await asyncio.to_thread(_write_all, fd, pending)
                    size += pending_size
                    pending, pending_size = [], 0
            if pending:
                await asyncio.to_thread(_write_all, fd, pending)
                size += pending_size
            await asyncio.to_thread(os.fsync, fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        os.close(fd)
        await asyncio.to_thread(os.replace, tmp, final)
        return size

    async def open(self, key: str) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            f = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise StoredFileMissing(key) from None
        try:
            while block := await asyncio.to_thread(f.read, READ_CHUNK):
                yield block
        finally:
            f.close()

    async def delete(self, key: str) -> None:
        path = self._path(key)
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(os.unlink, path)

    async def close(self) -> None:
        return None


def _write_all(fd: int, blocks: list[bytes]) -> None:
    for block in blocks:
        view = memoryview(block)
        while view:
            written = os.write(fd, view)
            view = view[written:]
