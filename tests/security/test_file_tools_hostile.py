"""Hostile files planted in a workspace (second probe, H1 and M3): a FIFO never blocks a file
tool, a sparse or huge file is never read whole, a stuck file call cannot take the default thread
pool, the workspace quota and the checkpoint cap hold."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

from codetether.agent.workspace import files
from codetether.agent.workspace.files import MAX_EDIT_BYTES, ToolFailure, Workspace
from codetether.agent.workspace.gitops import Git, GitOutputTooLarge
from codetether.agent.workspace.toolcalls import ToolCalls, disk_usage


@pytest.fixture
def ws(tmp_path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    (path / "a.txt").write_text("alpha\n")
    os.mkfifo(path / "p")
    return path


def within(seconds: float, fn, *args):
    """``fn(*args)`` on a throwaway thread; a call that blocks fails the test instead of hanging it."""
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(fn, *args).result(timeout=seconds)
    finally:
        pool.shutdown(wait=False)


def refused(fn, *args) -> str:
    def call():
        try:
            fn(*args)
        except ToolFailure as err:
            return str(err)
        return None

    message = within(5, call)
    assert message is not None, f"{fn.__name__}{args} was not refused"
    return message


def test_a_fifo_is_refused_by_every_file_tool(ws):
    w = Workspace(str(ws))
    assert "not a regular file" in refused(w.read, "p")
    assert "not a regular file" in refused(w.write, "p", "x")
    assert "not a regular file" in refused(w.edit, "p", "a", "b")
    assert "not a regular file" in refused(w.edit, "p", "", "b")
    assert "not a regular file" in refused(w.grep, "x", "p")
    # The whole tree with ripgrep and with the Python fallback: the FIFO is skipped, not opened.
    assert within(10, w.grep, "alpha") == "a.txt:1: alpha"
    original = files.rg_path
    files.rg_path = lambda: None
    try:
        assert within(10, w.grep, "alpha") == "a.txt:1: alpha"
    finally:
        files.rg_path = original


def test_write_never_opens_a_planted_temp_name(ws):
    # The old temporary name beside the target, as a FIFO: a fixed name would block on it.
    os.mkfifo(ws / "a.txt.codetether-tmp")
    w = Workspace(str(ws))
    assert within(5, w.write, "a.txt", "beta\n").startswith("replaced a.txt")
    assert (ws / "a.txt").read_text() == "beta\n"
    assert within(5, w.edit, "a.txt", "beta", "gamma").startswith("edited a.txt")
    assert not [n for n in os.listdir(ws) if n.startswith("a.txt.codetether-tmp-")]


def test_a_sparse_file_is_never_read_whole(ws):
    with open(ws / "sparse.bin", "wb") as f:
        f.truncate(256 * 1024 * 1024)
    w = Workspace(str(ws))
    for fn, args in ((w.read, ("sparse.bin",)), (w.edit, ("sparse.bin", "a", "b")), (w.edit, ("sparse.bin", "", "b"))):
        assert "larger than" in refused(fn, *args)
    # Same size as the file: write compares, within the cap only.
    assert "larger than" in refused(w.write, "sparse.bin", "x" * (MAX_EDIT_BYTES + 1))
    assert "larger than" in refused(w.edit, "a.txt", "alpha", "x" * (MAX_EDIT_BYTES + 1))


def test_a_stuck_file_call_keeps_to_its_own_pool(ws):
    release = threading.Event()

    def stuck(*_args):
        release.wait(30)
        return "late"

    calls = ToolCalls(settings=SimpleNamespace(file_tool_threads=2, file_tool_timeout_seconds=0.5),
                      db=None, recorder=None, sandbox=None, layout=None)
    calls.pool = ThreadPoolExecutor(max_workers=2)

    async def scenario():
        started = time.monotonic()
        results = await asyncio.gather(*(calls._in_pool("read", stuck) for _ in range(8)), return_exceptions=True)
        assert all(isinstance(r, ToolFailure) and "took longer" in str(r) for r in results)
        assert time.monotonic() - started < 5
        # The default pool (DNS, webhook deliveries) is untouched.
        assert await asyncio.wait_for(asyncio.to_thread(lambda: "free"), 2) == "free"

    try:
        asyncio.run(scenario())
    finally:
        release.set()
        calls.pool.shutdown(wait=True)


def test_workspace_quota(ws):
    (ws / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    with open(ws / "sparse.bin", "wb") as f:
        f.truncate(1024 * 1024 * 1024)  # allocates nothing: not counted
    used = disk_usage(str(ws), 1 << 40)
    assert 3 * 1024 * 1024 <= used < 8 * 1024 * 1024
    calls = ToolCalls(settings=SimpleNamespace(file_tool_threads=1, file_tool_timeout_seconds=10,
                                               workspace_quota_bytes=2 * 1024 * 1024),
                      db=None, recorder=None, sandbox=None, layout=None)
    over = asyncio.run(calls._over_quota(Workspace(str(ws))))
    assert over and "quota of 2 MiB" in over
    calls.settings.workspace_quota_bytes = 64 * 1024 * 1024
    assert asyncio.run(calls._over_quota(Workspace(str(ws)))) is None


async def test_checkpoint_diff_is_capped_while_streaming(ws):
    subprocess.run(["git", "-C", str(ws), "-c", "user.email=t@e", "-c", "user.name=t", "commit", "-q",
                    "--allow-empty", "-m", "base"], check=True)
    base = subprocess.run(["git", "-C", str(ws), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    os.unlink(ws / "p")
    (ws / "blob.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    git = Git(allow_local=True)
    with pytest.raises(GitOutputTooLarge):
        await git.diff_binary(str(ws), base, max_bytes=256 * 1024)
    patch = await git.diff_binary(str(ws), base, max_bytes=16 * 1024 * 1024)
    assert b"GIT binary patch" in patch
