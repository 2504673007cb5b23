"""The data dir holds what only this service may read: the SQLite database (tasks, transcripts,
webhook and push credentials), the dev stack's keys and reply secret, Temporal's dev database.

:func:`secure_data_dir` creates it 0700, and at every start tightens an existing one (and the
files directly in it) that others could read, as PostgreSQL insists on for its own data
directory; :func:`write_private` writes a secret file that is 0600 from its first byte. Called by
``Database.from_settings`` (``core/db.py``) and ``codetether dev`` (``cli/dev.py``).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600


def _tighten(path: Path, st: os.stat_result) -> None:
    loose = stat.S_IMODE(st.st_mode) & 0o077
    if not loose:
        return
    if st.st_uid != os.geteuid():
        log.warning("%s is readable by others and owned by another user; not changing it", path)
        return
    os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o077, follow_symlinks=False)
    log.info("tightened %s to %o (it was readable by others)", path, stat.S_IMODE(st.st_mode) & ~0o077)


def secure_data_dir(path: Path) -> Path:
    """``path`` created 0700 if missing; otherwise it and its direct entries lose group and other
    access. Symlinks are left alone (their target is not the data dir's to change)."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _tighten(path, path.stat())
    for entry in os.scandir(path):
        if entry.is_symlink():
            continue
        try:
            _tighten(Path(entry.path), entry.stat(follow_symlinks=False))
        except FileNotFoundError:  # removed meanwhile (a SQLite -journal, say)
            continue
    return path


def write_private(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` as a 0600 file: created with that mode (no window in which the
    umask's 0644 applies), and tightened first if it already exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def create_private(path: Path) -> None:
    """Makes sure ``path`` exists as a 0600 file (an empty SQLite database file before SQLite
    opens it, so the database and its -wal/-shm, which copy its mode, are private)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
