"""kill -9 of the worker that holds a build task's workspace, in the middle of the tool loop: the
task moves to another worker (with its own, empty workspace root), which rebuilds the workspace
from the base commit plus the last checkpoint and finishes the task with every change."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path

import httpx
import pytest

from tests.agent.repos import make_bare_repo
from tests.chaos.conftest import wait_task

pytestmark = pytest.mark.chaos


async def test_worker_killed_mid_loop_task_finishes_from_checkpoint(cluster, make_user, tmp_path):
    cluster.env["CODETETHER_CODEBASE_ALLOW_LOCAL"] = "true"
    # Workspace roots the sandbox uids can reach (pytest's tmp_path is private to root).
    disks = Path(tempfile.mkdtemp(prefix="codetether-chaos-ws-"))
    os.chmod(disks, 0o711)
    await asyncio.to_thread(cluster.start_temporal)
    _api, port = await asyncio.to_thread(cluster.start_api)
    first = cluster.start_worker({"CODETETHER_WORKSPACE_ROOT": str(disks / "disk1")})
    user = await make_user()
    bare, base = make_bare_repo(tmp_path / "remote")

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        r = await http.post("/v1/automation/codebases", json={"name": "web", "repository_url": str(bare)},
                            headers=user.headers)
        assert r.status_code == 201, r.text
        prompt = "\n".join([
            "WRITE: notes.txt :: one",
            "BASH: sleep 6",
            "EDIT: notes.txt :: one :: two",
        ])
        r = await http.post("/v1/automation/tasks", json={"title": "Survive", "description": prompt, "agent_type": "build",
                                                          "codebase_id": r.json()["codebase_id"]}, headers=user.headers)
        assert r.status_code == 201, r.text
        task_id = r.json()["task_id"]
        # The write is done (and checkpointed); bash runs on the first worker.
        await wait_task(http, task_id, user.headers,
                        lambda t: (t["progress"] or {}).get("message", "").startswith("bash:"), timeout=90,
                        what="running bash")
        assert (disks / "disk1" / task_id / "notes.txt").read_text() == "one"
        await asyncio.to_thread(first.kill9)

        cluster.start_worker({"CODETETHER_WORKSPACE_ROOT": str(disks / "disk2")})
        done = await wait_task(http, task_id, user.headers, lambda t: t["status"] in ("completed", "failed"), timeout=180)
        assert done["status"] == "completed", done
        # The edit needed the checkpointed write: the rebuilt workspace had it.
        assert done["changes"]["files"] == [{"path": "notes.txt", "status": "added", "additions": 1, "deletions": 0}]
        patch = next(a for a in done["artifacts"] if a["kind"] == "patch")
        text = (await http.get(patch["url"], headers=user.headers)).text
        assert "+two" in text and "+one" not in text
        assert done["git"]["base_commit"] == base
        assert not (disks / "disk2" / task_id).exists()  # cleaned up on the worker that finished
        # bash really ran (twice: its first run died with the worker) in the sandbox
        events = (await http.get(f"/v1/automation/tasks/{task_id}/events", headers=user.headers)).json()["data"]
        bash_steps = [e for e in events if e["event"] == "task.progress"
                      and (e["data"]["progress"] or {}).get("message", "").startswith("bash:")]
        assert len(bash_steps) == 2
    shutil.rmtree(disks, ignore_errors=True)
