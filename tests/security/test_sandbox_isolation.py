"""The sandbox against the second probe: it sees only an allow-list of the host (M5), its /tmp
and its memory are capped for the whole command (M3), and one user's FIFO reads leave other
users' tasks and the worker's webhook deliveries alone (H1)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from codetether.agent.workspace.cgroups import SandboxCgroups, join_prefix
from codetether.agent.workspace.sandbox import Sandbox
from tests.support.sandbox_workspace import sandbox_workspace
from codetether.core.config import Settings
from tests.conftest import wait_status
from tests.support.receiver import Receiver

pytestmark = pytest.mark.skipif(not Sandbox(Settings()).available, reason="bubblewrap is not installed")

ALL_SCOPES = ["tasks:read", "tasks:write", "messages:write", "webhooks:manage"]


@pytest.fixture
def ws() -> Iterator[Path]:
    with sandbox_workspace() as path:
        yield path


async def run(ws: Path, command: str, **settings) -> tuple[str, int | None]:
    out = await Sandbox(Settings(**settings)).run(str(ws), str(ws), command, timeout_ms=30000, read_only=False,
                                                  max_output=200_000)
    return out.output.decode(), out.exit_code


async def test_the_host_is_an_allow_list(ws, tmp_path):
    # A world-readable file outside the allow-list (another repository, the data dir) is not there.
    secret_dir = Path("/var/tmp") / f"codetether-host-{uuid.uuid4().hex[:8]}"
    secret_dir.mkdir(mode=0o755)
    (secret_dir / "tasks.db").write_text("whsec_host")
    (secret_dir / "tasks.db").chmod(0o644)
    try:
        text, code = await run(ws, f"cat {secret_dir}/tasks.db; ls /var /home /root /work /srv /opt; ls /")
        assert "whsec_host" not in text and "No such file or directory" in text
        listing = text.strip().splitlines()
        assert "var" not in listing and "home" not in listing
        # What bash, git, python3 and coreutils need is still there; nothing outside the workspace is writable.
        text, _code = await run(ws, "git --version && python3 -c 'import ssl, json, sqlite3; print(\"py-ok\")' && "
                                   "sort --version | head -1 && ls /etc/ssl >/dev/null && echo bin-ok; "
                                   "echo x > /etc/escape; echo y > /usr/escape")
        assert "git version" in text and "py-ok" in text and "bin-ok" in text, text
        assert text.count("Read-only file system") == 2
    finally:
        subprocess.run(["rm", "-rf", str(secret_dir)])


async def test_the_private_tmp_has_a_size(ws):
    text, _code = await run(ws, "head -c 40M /dev/zero > /tmp/big; echo rc=$?; df -k /tmp | tail -1",
                            sandbox_tmp_bytes=16 * 1024 * 1024)
    assert "No space left on device" in text and "rc=1" in text, text
    assert " 16384 " in text


async def test_memory_is_capped_for_the_whole_command(ws, monkeypatch):
    box = Sandbox(Settings())
    if not box.cgroups.available:
        pytest.skip(f"this machine gives the worker no cgroups: {box.cgroups.describe()}")
    # The command's own cgroups (other processes on the machine may run sandboxes of their own).
    made: list[str] = []
    create = SandboxCgroups.create

    def recording(self):
        group = create(self)
        if group is not None:
            made.extend(group.dirs)
        return group

    monkeypatch.setattr(SandboxCgroups, "create", recording)
    # Three processes of 150 MiB each: every one is under the per-process limit, the sum is not.
    hog = "python3 -c 'import time; b = bytearray(150 * 1024 * 1024); print(\"held\", flush=True); time.sleep(4)'"
    text, _code = await run(ws, f"for i in 1 2 3; do {hog} & done; wait; echo done",
                            sandbox_memory_bytes=256 * 1024 * 1024)
    assert "done" in text and "Killed" in text, text
    assert text.splitlines().count("held") < 3
    # Nothing is left behind: the command's cgroup is removed with it.
    assert made and not [d for d in made if os.path.exists(d)]


async def test_fifo_reads_leave_other_tenants_and_webhooks_alone(stack, make_user):
    attacker = await make_user(scopes=ALL_SCOPES)
    victim = await make_user(scopes=ALL_SCOPES)
    async with Receiver() as rx:
        r = await stack.http.post("/v1/webhooks", json={"url": rx.url, "events": ["task.completed"]},
                                  headers=victim.headers)
        assert r.status_code == 201, r.text
        fifo = "BASH: mkfifo p\nWRITE: p :: x\nGREP: anything\nEDIT: p :: a :: b\nREAD: p"
        hostile = []
        for i in range(6):
            r = await stack.http.post("/v1/automation/tasks", json={
                "title": f"fifo {i}", "agent_type": "build", "description": fifo}, headers=attacker.headers)
            assert r.status_code == 201, r.text
            hostile.append(r.json()["task_id"])
        r = await stack.http.post("/v1/automation/tasks", json={
            "title": "innocent", "agent_type": "build", "description": "WRITE: ok.txt :: fine\nREAD: ok.txt"},
            headers=victim.headers)
        assert r.status_code == 201, r.text
        innocent = r.json()["task_id"]

        done = await wait_status(stack.http, innocent, victim.headers, {"completed", "failed"}, timeout=120)
        assert done["status"] == "completed" and "fine" in done["result"], done
        [hook] = await rx.wait_for(1, timeout=60)
        assert innocent.encode() in hook.body
        for task_id in hostile:
            task = await wait_status(stack.http, task_id, attacker.headers, {"completed", "failed"}, timeout=120)
            assert task["status"] == "completed", task
            assert "p is not a regular file" in task["result"], task["result"]
        # The default thread pool still answers at once.
        assert await asyncio.wait_for(asyncio.to_thread(lambda: "free"), 5) == "free"


async def test_cgroup_v2_layout(tmp_path, monkeypatch):
    # A cgroup v2 tree with memory and pids delegated (a fake one: the limits land as files).
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    monkeypatch.setattr(SandboxCgroups, "_own", lambda self, controller: "/" if controller is None else None)
    groups = SandboxCgroups(memory_bytes=300 * 1024 * 1024, max_processes=64, root=str(tmp_path))
    assert groups.version == 2, groups.describe()
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+memory +pids"
    group = groups.create()
    [d] = group.dirs
    assert (Path(d) / "memory.max").read_text() == str(300 * 1024 * 1024)
    assert (Path(d) / "pids.max").read_text() == "64"
    assert join_prefix(group)[-1] == os.path.join(d, "cgroup.procs")
    for f in Path(d).iterdir():
        f.unlink()  # a real cgroup folder's files go with it
    await groups.remove(group)
    assert not Path(d).exists()
    # Without delegation the rlimits stay the only limits, and the worker says so.
    (tmp_path / "cgroup.controllers").write_text("cpu\n")
    assert not SandboxCgroups(memory_bytes=1, max_processes=1, root=str(tmp_path)).available
