"""The bash sandbox and the file tools' confinement: no network (not even loopback), no writes
outside the workspace or into .git, a timeout that kills every child, symlink escapes refused,
and cancellation that stops a running command."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from codetether.agent.workspace.sandbox import Sandbox, SandboxUnavailable
from tests.support.sandbox_workspace import sandbox_workspace
from codetether.agent.workspace.files import ToolFailure, Workspace
from codetether.core.config import Settings
from tests.conftest import wait_status

pytestmark = pytest.mark.skipif(not Sandbox(Settings()).available, reason="bubblewrap is not installed")


@pytest.fixture
def ws() -> Iterator[Path]:
    with sandbox_workspace({"a.txt": "a\n"}) as path:
        yield path


def sandbox() -> Sandbox:
    return Sandbox(Settings())


async def run(ws: Path, command: str, *, read_only: bool = False, timeout_ms: int | None = 20000) -> tuple[str, int | None, bool]:
    out = await sandbox().run(str(ws), str(ws), command, timeout_ms=timeout_ms, read_only=read_only, max_output=100_000)
    return out.output.decode(), out.exit_code, out.timed_out


async def test_no_network_not_even_loopback(ws):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    try:
        text, code, _ = await run(ws, f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 3)\"")
        assert code != 0 and "Connection refused" in text
        text, code, _ = await run(ws, "python3 -c \"import socket; socket.create_connection(('1.1.1.1', 53), 3)\"")
        assert code != 0
    finally:
        srv.close()


async def test_writes_stay_in_the_workspace_and_out_of_git(ws):
    marker = f"/tmp/codetether-escape-{uuid.uuid4().hex}"
    text, code, _ = await run(ws, f"echo hi > b.txt && echo x > {marker}; echo y > .git/config2; echo z > /etc/escape; "
                                  "touch $HOME/../root/escape; cat /root/.bashrc; id -u")
    assert (ws / "b.txt").read_text() == "hi\n"
    assert not Path(marker).exists()  # /tmp inside is private
    assert not (ws / ".git" / "config2").exists() and "Read-only file system" in text
    assert not Path("/etc/escape").exists()
    if os.geteuid() == 0:
        assert text.strip().splitlines()[-1] != "0"  # never root inside


async def test_read_only_workspace_for_plan_and_explore(ws):
    text, code, _ = await run(ws, "cat a.txt; echo no > a.txt", read_only=True)
    assert text.startswith("a\n") and "Read-only file system" in text and code != 0
    assert (ws / "a.txt").read_text() == "a\n"


async def test_timeout_kills_every_child(ws):
    text, code, timed_out = await run(
        ws, "(while true; do date +%s%N >> tick.txt; sleep 0.1; done) & sleep 100", timeout_ms=1500
    )
    assert timed_out and code is None
    size = (ws / "tick.txt").stat().st_size
    await asyncio.sleep(1.0)
    assert (ws / "tick.txt").stat().st_size == size  # nothing is still writing


async def test_clean_environment(ws, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-leak")
    text, _code, _ = await run(ws, "env")
    assert "sk-must-not-leak" not in text and "CODETETHER" not in text


async def test_without_bubblewrap_bash_is_refused(ws):
    box = sandbox()
    box.bwrap = None
    with pytest.raises(SandboxUnavailable):
        await box.run(str(ws), str(ws), "id", timeout_ms=None, read_only=False, max_output=1000)
    assert "refused" in box.describe()


def test_file_tools_refuse_escapes(ws, tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    (ws / "link").symlink_to(outside)
    (ws / "dirlink").symlink_to(tmp_path)
    w = Workspace(str(ws))
    for bad in ("../x", "/etc/passwd", "link", "dirlink/secret.txt", str(outside)):
        with pytest.raises(ToolFailure):
            w.read(bad)
    with pytest.raises(ToolFailure):
        w.write("dirlink/new.txt", "x")
    with pytest.raises(ToolFailure):
        w.edit(".git/config", "", "x")
    assert not (tmp_path / "new.txt").exists()
    assert w.read(str(ws / "a.txt")) == "1: a"  # an absolute path inside is fine
    assert "a.txt" in w.glob("*.txt") and "link" not in w.glob("*")
    ro = Workspace(str(ws), writable=False)
    with pytest.raises(ToolFailure):
        ro.write("a.txt", "b")


async def test_cancel_mid_bash_stops_the_command(stack, user):
    canary = f"codetether-canary-{uuid.uuid4().hex[:10]}"
    r = await stack.http.post("/v1/automation/tasks", json={
        "title": "Long command", "agent_type": "build",
        "description": f"BASH: exec -a {canary} sleep 120"}, headers=user.headers)
    task_id = r.json()["task_id"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while subprocess.run(["pgrep", "-f", canary], capture_output=True).returncode != 0:
        assert loop.time() < deadline, "the command never started"
        await asyncio.sleep(0.1)
    r = await stack.http.delete(f"/v1/automation/tasks/{task_id}", headers=user.headers)
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    assert subprocess.run(["pgrep", "-f", canary], capture_output=True).returncode != 0
    done = await wait_status(stack.http, task_id, user.headers, {"cancelled"})
    assert done["status"] == "cancelled"
