"""A workspace folder the way the worker lays one out for the sandbox: under the system temp folder
(the sandbox's uid must reach it), owned by the first slot's uid when the tests run as root, with
a ``.git`` the sandbox may read but not write."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def sandbox_workspace(files: dict[str, str] | None = None) -> Iterator[Path]:
    root = Path("/tmp") / f"codetether-sbx-{uuid.uuid4().hex[:8]}"
    root.mkdir(mode=0o755)
    path = root / "ws"
    path.mkdir()
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    for name, text in (files or {}).items():
        (path / name).write_text(text)
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "61000:61000", str(path)], check=True)
        subprocess.run(["chown", "-R", "root:root", str(path / ".git")], check=True)
        subprocess.run(["chmod", "-R", "g+rwX", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["rm", "-rf", str(root)])
