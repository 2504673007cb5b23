"""Where a task's workspace lives on a worker, and how the artifacts a run stores are named.

Shared by the workspace activities (``codetether/agent/workspace/activities.py``) and the tool
calls they run (``codetether/agent/workspace/toolcalls.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

# Written in the workspace's .git once it is prepared: a retried prepare on the same worker reuses it.
READY_MARKER = ".codetether-base"


def run_artifact_id(task_id: str, run_id: str, what: str) -> str:
    # Deterministic, so a retried activity stores the same artifact once.
    return "art_" + hashlib.sha256(f"{task_id}/{run_id}/{what}".encode()).hexdigest()[:26]


class WorkspaceLayout:
    """A worker's workspace root: ``<root>/<task_id>`` is the repository, ``<root>/<task_id>.out``
    holds what the agent writes outside it (the plan agent's plan.md)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, task_id: str) -> str:
        return str(self.root / task_id)

    def outputs(self, task_id: str) -> str:
        return str(self.root / f"{task_id}.out")

    def ensure_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(self.root, 0o711)
            os.chmod(self.root.parent, 0o711)
