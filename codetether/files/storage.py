"""Where the bytes of input files live: one interface, two implementations.

:class:`codetether.files.local.LocalStorage` keeps them in the data dir (``<data dir>/files/<user>/<file>``: folders
0700, files 0600, written under a temporary name and renamed when complete);
:class:`codetether.files.s3.S3Storage` in an S3-compatible bucket. :func:`codetether.files.wiring.storage_from_settings`
is the one place that chooses; the API and the worker both call it. Every write is streamed:
``save`` takes an async iterator of chunks and never holds the whole file, and a failed write
leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Protocol


class StoredFileMissing(Exception):
    """The storage has no object under the key (deleted, or never completely written)."""


class FileStorage(Protocol):
    kind: str

    async def save(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Writes the chunks under ``key``; answers the byte count. Nothing remains on failure."""

    def open(self, key: str) -> AsyncIterator[bytes]:
        """The bytes under ``key`` in chunks; raises :class:`StoredFileMissing` on first read."""

    async def delete(self, key: str) -> None:
        """Removes ``key``; a missing key is fine."""

    async def close(self) -> None:
        """Releases connections."""


def check_key(key: str) -> None:
    parts = key.split("/")
    if not key or any(p in ("", ".", "..") for p in parts) or "\x00" in key:
        raise ValueError(f"bad storage key {key!r}")
