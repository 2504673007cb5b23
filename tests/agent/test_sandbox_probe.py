"""A worker whose host refuses bubblewrap (a container's seccomp profile, user namespaces turned
off) says so at start and refuses ``bash`` with that reason, instead of failing every command."""

from __future__ import annotations

import asyncio
import os
import stat
import tempfile
from pathlib import Path

import pytest

from codetether.agent.workspace import sandbox as sandbox_module
from codetether.agent.workspace.sandbox import Sandbox, SandboxUnavailable
from codetether.core.config import Settings


@pytest.fixture
def refusing_bwrap(monkeypatch):
    # Outside pytest's 0700 folders: a root worker probes as a sandbox uid.
    folder = tempfile.TemporaryDirectory()
    os.chmod(folder.name, 0o755)
    fake = Path(folder.name) / "bwrap"
    # What bwrap prints when seccomp forbids unshare(CLONE_NEWUSER).
    fake.write_text("#!/bin/sh\n[ \"$1\" = --help ] && { echo '--size BYTES'; exit 0; }\n"
                    "echo 'bwrap: No permissions to create new namespace, likely because the kernel does not allow non-privileged user namespaces.' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setattr(sandbox_module, "bwrap_path", lambda: str(fake))
    sandbox_module._bwrap_refusal.cache_clear()
    yield str(fake)
    sandbox_module._bwrap_refusal.cache_clear()
    folder.cleanup()


def test_refused_bwrap_makes_the_sandbox_unavailable_with_the_reason(refusing_bwrap, tmp_path):
    box = Sandbox(Settings())
    assert box.bwrap == refusing_bwrap
    assert not box.available
    assert "No permissions to create new namespace" in box.refusal
    assert "bubblewrap cannot run here" in box.describe() and "bash tool is refused" in box.describe()
    with pytest.raises(SandboxUnavailable, match="bubblewrap cannot run on this host"):
        asyncio.run(box.run(str(tmp_path), str(tmp_path), "echo hi", timeout_ms=5000, read_only=False, max_output=1000))


def test_working_bwrap_is_available():
    box = Sandbox(Settings())
    if box.bwrap is None:
        pytest.skip("bubblewrap is not installed")
    assert box.refusal is None and box.available
