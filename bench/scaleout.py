"""Scale-out throughput: 1 API + 1 worker vs 2 APIs + 2 workers, in one run, on one Temporal dev
server, one PostgreSQL database (fresh, dropped afterwards) and one Redis.

    .venv/bin/python bench/scaleout.py [--tasks 200] [--concurrency 16] [--rounds 2] [--no-write]

Each round starts the API and worker processes (``codetether api --port``, ``codetether worker``)
on a fresh task queue, creates ``--tasks`` demo tasks through the APIs (round robin,
``--concurrency`` requests in flight) and waits until all are completed. It reports accepted
creates per second, create latency and end-to-end completions per second. Rounds alternate
1+1 and 2+2 so machine noise falls on both. The table goes to docs/performance.md between the
``scaleout`` markers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bench.common import PRODUCTION_END, pct, write_section  # noqa: E402
from codetether.accounts.service import create_api_key, create_user  # noqa: E402
from codetether.core.db import Database, migrate  # noqa: E402
from codetether.core.models import Task  # noqa: E402
from tests.production.pg import fresh_database  # noqa: E402
from tests.production.procs import Cluster  # noqa: E402
from tests.production.run_postgres import REDIS_URL, check_redis  # noqa: E402


async def run_round(cluster: Cluster, db: Database, apis: int, workers: int, n: int, concurrency: int) -> dict:
    queue = f"scale-{apis}x{workers}-{uuid.uuid4().hex[:8]}"
    cluster.env["CODETETHER_TEMPORAL_TASK_QUEUE"] = queue
    cluster.apis, cluster.workers = [], []
    for _ in range(apis):
        await asyncio.to_thread(cluster.start_api)
    for _ in range(workers):
        await asyncio.to_thread(cluster.start_worker)
    user = await create_user(db, f"bench-{uuid.uuid4().hex[:8]}@example.com", tier="enterprise")
    _row, key = await create_api_key(db, user.id)
    headers = {"Authorization": f"Bearer {key}"}
    clients = [
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60, limits=httpx.Limits(max_connections=concurrency))
        for _proc, port in cluster.apis
    ]
    latencies: list[float] = []
    errors = 0
    counter = iter(range(n))

    async def creator() -> None:
        nonlocal errors
        for i in counter:
            t0 = time.perf_counter()
            r = await clients[i % len(clients)].post(
                "/v1/automation/tasks", json={"title": f"bench {i}", "description": "hello"}, headers=headers
            )
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 201:
                errors += 1

    async def completed() -> int:
        async with db.session() as s:
            return await s.scalar(
                select(func.count()).select_from(Task).where(Task.user_id == user.id, Task.status == "completed")
            )

    start = time.perf_counter()
    await asyncio.gather(*(creator() for _ in range(concurrency)))
    created_in = time.perf_counter() - start
    while await completed() < n - errors:
        await asyncio.sleep(0.05)
        if time.perf_counter() - start > 600:
            raise SystemExit(f"round {apis}+{workers} did not finish: {await completed()}/{n}")
    total = time.perf_counter() - start
    for c in clients:
        await c.aclose()
    for proc in [*(p for p, _ in cluster.apis), *cluster.workers]:
        await asyncio.to_thread(proc.stop)
    return {
        "config": f"{apis} API + {workers} worker",
        "tasks": n,
        "errors": errors,
        "creates_per_s": n / created_in,
        "create_p50_ms": statistics.median(latencies) * 1000,
        "create_p99_ms": pct(latencies, 99) * 1000,
        "completed_per_s": (n - errors) / total,
    }


async def run_rounds(args, url: str, tmp: Path) -> dict[str, list[dict]]:
    results: dict[str, list[dict]] = {}
    db = Database(url)
    cluster = Cluster(tmp, url, redis_url=REDIS_URL)
    try:
        await asyncio.to_thread(cluster.start_temporal)
        for r in range(args.rounds):
            for apis, workers in ((1, 1), (2, 2)) if r % 2 == 0 else ((2, 2), (1, 1)):
                res = await run_round(cluster, db, apis, workers, args.tasks, args.concurrency)
                print(res, flush=True)
                results.setdefault(res["config"], []).append(res)
    finally:
        await db.dispose()
        await asyncio.to_thread(cluster.close)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    check_redis(REDIS_URL)

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="ct-scaleout-") as tmp, fresh_database("ct_bench") as url:
        migrate(url)
        results = asyncio.run(run_rounds(args, url, Path(tmp)))
    load = (load_before + os.getloadavg()[0]) / 2

    rows = []
    for config, rs in results.items():
        rows.append(
            {
                "config": config,
                "tasks": sum(r["tasks"] for r in rs),
                "errors": sum(r["errors"] for r in rs),
                "creates_per_s": statistics.median(r["creates_per_s"] for r in rs),
                "create_p50_ms": statistics.median(r["create_p50_ms"] for r in rs),
                "create_p99_ms": max(r["create_p99_ms"] for r in rs),
                "completed_per_s": statistics.median(r["completed_per_s"] for r in rs),
            }
        )
    base = rows[0]["completed_per_s"]
    table = [
        "| processes | tasks | errors | creates/s | create p50 ms | create p99 ms | completed/s (end to end) | vs 1+1 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        table.append(
            f"| {row['config']} | {row['tasks']} | {row['errors']} | {row['creates_per_s']:.1f} | {row['create_p50_ms']:.1f} "
            f"| {row['create_p99_ms']:.1f} | {row['completed_per_s']:.1f} | {row['completed_per_s'] / base:.2f}× |"
        )
    section = "\n".join(
        [
            "<!-- scaleout:begin -->",
            "### Scale-out: 1+1 vs 2+2 processes (issue 7)",
            "",
            f"Command: `.venv/bin/python bench/scaleout.py --tasks {args.tasks} --concurrency {args.concurrency} "
            f"--rounds {args.rounds}` (one Temporal dev server on SQLite+WAL, PostgreSQL, Redis; "
            f"measured {time.strftime('%Y-%m-%d')} on the shared 2-core machine while other work ran: "
            f"1-minute load average ~{load:.0f}). Medians over rounds (p99: worst round); rounds alternate "
            "the two layouts, so the ratio is the figure to read, not the absolute rates. A task here is the "
            "whole demo run: create, slot, start, one agent turn with streamed progress, completion, each "
            "step recorded in PostgreSQL.",
            "",
            *table,
            "",
            "All processes (Temporal, PostgreSQL, APIs, workers, the load generator) share two cores, so a "
            "second API and a second worker can only add what the CPU left over allows; the gain is small "
            "by construction. On a real cluster (Temporal on its own machines) API and worker replicas "
            "scale out independently; tests/production/test_scaleout.py proves the layout is correct "
            "(shared idempotency and rate limits, agent turns on both workers).",
            "<!-- scaleout:end -->",
        ]
    )
    print(section)
    if not args.no_write:
        write_section(section, "<!-- scaleout:begin -->", "<!-- scaleout:end -->", before=PRODUCTION_END)


if __name__ == "__main__":
    main()
