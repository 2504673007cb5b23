"""Event → SSE client latency of ``GET /v1/automation/tasks/{id}/events`` (target p50 ≤ 200 ms).

    .venv/bin/python bench/sse_latency.py [--streams 50] [--events 600] [--tasks 30]

Starts the API under uvicorn in a subprocess (``codetether api``, SQLite+WAL in a temp data dir)
and, for phase 2, its own Temporal dev server and worker process. Two phases:

1. ``--streams`` SSE clients, each following its own task, while this process appends
   ``--events`` events to those tasks through the worker's own :class:`codetether.tasks.events.EventRecorder`
   at random 10–60 ms intervals. Latency = the client's arrival time minus the moment the event's
   transaction committed (the writer's local-bus notice, same process, same monotonic clock). This
   is the path the API adds. ``--database-url`` runs it on PostgreSQL, where the API hears the writer's NOTIFY.
2. ``--tasks`` real demo tasks (Temporal + worker), each followed by an SSE stream opened right
   after ``POST /v1/automation/tasks``. Latency = arrival minus the event's ``created_at`` (the
   instant the workflow decided the transition, before the activity even wrote it), so it also
   includes scheduling the recording activity and its database write.

Prints a Markdown section and writes it to docs/performance.md between the ``sse-latency`` markers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
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
    start_temporal,
    stop_procs,
    wait_port,
    write_section,
)
from codetether.accounts.service import create_api_key, create_user  # noqa: E402
from codetether.core.config import Settings  # noqa: E402
from codetether.core.db import Database, migrate  # noqa: E402
from codetether.tasks.eventnotify import local_bus  # noqa: E402
from codetether.tasks.events import EventRecorder  # noqa: E402
from codetether.tasks.eventstream import NOTIFIED_POLL_INTERVAL, POLL_INTERVAL  # noqa: E402
from codetether.core.ids import new_id, parse_iso, utcnow  # noqa: E402
from codetether.core.models import Task  # noqa: E402
from codetether.tasks.contracts import TaskChanges

BEGIN, END = "<!-- sse-latency:begin -->", "<!-- sse-latency:end -->"


async def sse_events(response: httpx.Response):
    """Yields (event type, data) of an SSE response as they arrive."""
    event, data = "message", []
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))


async def phase_recorded(http: httpx.AsyncClient, db: Database, user_id: str, streams: int, events: int) -> list[float]:
    tasks = []
    async with db.write_session() as s:
        for i in range(streams):
            now = utcnow()
            t = Task(
                id=new_id("task"), user_id=user_id, run_id=new_id("run"), title=f"sse {i}", description="bench",
                agent_type="general", model="demo", status="running", created_at=now, updated_at=now,
                metadata_={}, conversation=[], retry_count=0, run_count=1, last_seq=0,
            )
            s.add(t)
            tasks.append(t)
        await s.commit()
    committed: dict[str, float] = {}
    arrivals: dict[str, float] = {}
    # The writer announces each commit on this process's bus right after it commits: that instant
    # is the start of the path measured (a notice may reach a client before record() returns).
    commits: dict[str, float] = {}
    unsubscribe = local_bus.subscribe(lambda task_id, seq: commits.__setitem__(task_id, time.perf_counter()))
    ready = asyncio.Semaphore(0)
    total = events

    async def follow(task_id: str) -> None:
        async with http.stream("GET", f"/v1/automation/tasks/{task_id}/events", headers={"Accept": "text/event-stream"}) as r:
            r.raise_for_status()
            ready.release()
            async for _event, data in sse_events(r):
                arrived = time.perf_counter()
                body = json.loads(data)
                arrivals[body["id"]] = arrived
                if body["event"] == "task.completed":
                    return

    followers = [asyncio.create_task(follow(t.id)) for t in tasks]
    for _ in tasks:
        await asyncio.wait_for(ready.acquire(), 30)
    recorder = EventRecorder(db)
    for i in range(total):
        task = tasks[i % len(tasks)]
        event_id = new_id("evt")
        await recorder.record(
            task_id=task.id, run_id=task.run_id, event_id=event_id, event_type="task.progress",
            changes=TaskChanges(progress={"message": f"step {i}", "percent": None, "updated_at": None}),
        )
        committed[event_id] = commits[task.id]
        await asyncio.sleep(random.uniform(0.01, 0.06))
    # End every stream with a terminal event (not measured).
    for task in tasks:
        await recorder.record(
            task_id=task.id, run_id=task.run_id, event_id=new_id("evt"), event_type="task.completed",
            changes=TaskChanges(status="completed", result="done"),
        )
    await asyncio.wait_for(asyncio.gather(*followers), 60)
    unsubscribe()
    return [(arrivals[e] - t) * 1000 for e, t in committed.items() if e in arrivals]


async def phase_tasks(http: httpx.AsyncClient, n: int) -> tuple[list[float], dict[str, list[float]]]:
    latencies: list[float] = []
    by_type: dict[str, list[float]] = {}

    async def one(i: int) -> None:
        r = await http.post("/v1/automation/tasks", json={"title": f"sse task {i}", "description": "bench", "model": "demo"})
        r.raise_for_status()
        task_id = r.json()["task_id"]
        async with http.stream("GET", f"/v1/automation/tasks/{task_id}/events", headers={"Accept": "text/event-stream"}) as s:
            async for event, data in sse_events(s):
                arrived = time.time()
                created = parse_iso(json.loads(data)["created_at"]).timestamp()
                ms = (arrived - created) * 1000
                if event != "task.created":
                    # task.created is decided before the stream was opened; it arrives as replay.
                    latencies.append(ms)
                    by_type.setdefault(event, []).append(ms)

    sem = asyncio.Semaphore(4)

    async def limited(i: int) -> None:
        async with sem:
            await one(i)

    await asyncio.gather(*(limited(i) for i in range(n)))
    return latencies, by_type


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=50, help="SSE clients in phase 1")
    ap.add_argument("--events", type=int, default=600, help="events recorded in phase 1")
    ap.add_argument("--tasks", type=int, default=30, help="demo tasks in phase 2 (0 skips it)")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--database-url", default=None,
                    help="a PostgreSQL database (postgresql+asyncpg://...) instead of SQLite in a temp dir")
    args = ap.parse_args()
    global BEGIN, END
    if args.database_url:
        BEGIN, END = "<!-- sse-latency-pg:begin -->", "<!-- sse-latency-pg:end -->"

    tmp = Path(tempfile.mkdtemp(prefix="ct-ssebench-"))
    api_port, t_port = free_port(), free_port()
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ)
    env.update(
        CODETETHER_DATA_DIR=str(tmp),
        CODETETHER_TEMPORAL_ADDRESS=f"127.0.0.1:{t_port}",
        CODETETHER_TEMPORAL_TASK_QUEUE=queue,
        CODETETHER_DEFAULT_MODEL="demo",
        CODETETHER_LOG_LEVEL="WARNING",
        # One bench user holds every stream (the per-user cap protects real deployments).
        CODETETHER_MAX_OPEN_STREAMS_PER_USER=str(args.streams + 10),
    )
    if args.database_url:
        env["CODETETHER_DATABASE_URL"] = args.database_url
    settings = Settings(data_dir=tmp, temporal_address=f"127.0.0.1:{t_port}", temporal_task_queue=queue,
                        database_url=args.database_url)
    await asyncio.to_thread(migrate, settings.resolved_database_url)
    db = Database.from_settings(settings)
    user = await create_user(db, f"bench-{uuid.uuid4().hex[:6]}@example.com", tier="enterprise")
    _row, key = await create_api_key(db, user.id)
    procs: list[subprocess.Popen] = []
    try:
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "codetether.cli", "api", "--port", str(api_port)],
                env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )
        wait_port(api_port)
        limits = httpx.Limits(max_connections=args.streams + 20, max_keepalive_connections=args.streams + 20)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{api_port}", headers={"Authorization": f"Bearer {key}"}, limits=limits, timeout=120
        ) as http:
            recorded = await phase_recorded(http, db, user.id, args.streams, args.events)
            task_lat: list[float] = []
            by_type: dict[str, list[float]] = {}
            if args.tasks:
                procs.append(start_temporal(t_port, tmp / "temporal.db"))
                wait_port(t_port)
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "codetether.cli", "worker"],
                        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    )
                )
                await phase_tasks(http, 3)  # warm-up
                task_lat, by_type = await phase_tasks(http, args.tasks)
    finally:
        await db.dispose()
        stop_procs(reversed(procs))

    cmd = f".venv/bin/python bench/sse_latency.py --streams {args.streams} --events {args.events} --tasks {args.tasks}"
    store = "PostgreSQL" if args.database_url else "SQLite+WAL"
    if args.database_url:
        cmd += " --database-url postgresql+asyncpg://…"
        wake = (f"The API learns about new events from the writer's `NOTIFY` (one `LISTEN` connection per API "
                f"process, `codetether/tasks/eventnotify.py`), polling only every {NOTIFIED_POLL_INTERVAL:g} s as a safety net.")
    else:
        wake = (f"The bench writes events from its own process, so the API learns about them by polling `tasks.last_seq` of "
                f"every followed task in one query every {POLL_INTERVAL * 1000:.0f} ms per API process "
                "(`codetether/tasks/eventstream.py`), however many clients listen.")
    lines = [
        BEGIN,
        f"## Event → SSE client latency, {store}",
        "",
        f"Command: `{cmd}` (API under uvicorn in its own process, {store}; measured "
        f"{time.strftime('%Y-%m-%d', time.gmtime())} on the shared 2-core machine while other work ran).",
        "",
        wake,
        "",
        "| path | events | p50 ms | p90 ms | p99 ms | max ms |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| commit → SSE client, {args.streams} concurrent streams | {len(recorded)} | {pct(recorded, 50):.1f} | "
        f"{pct(recorded, 90):.1f} | {pct(recorded, 99):.1f} | {max(recorded):.1f} |",
    ]
    if task_lat:
        lines.append(
            f"| workflow decision → SSE client, {args.tasks} demo tasks | {len(task_lat)} | {pct(task_lat, 50):.1f} | "
            f"{pct(task_lat, 90):.1f} | {pct(task_lat, 99):.1f} | {max(task_lat):.1f} |"
        )
        for etype in sorted(by_type):
            v = by_type[etype]
            lines.append(f"| … of which `{etype}` | {len(v)} | {pct(v, 50):.1f} | {pct(v, 90):.1f} | {pct(v, 99):.1f} | {max(v):.1f} |")
    lines += [
        "",
        f"**p50 event → client: {pct(recorded, 50):.0f} ms** (target ≤ 20 ms on PostgreSQL, ≤ 200 ms on SQLite).",
        END,
    ]
    section = "\n".join(lines)
    print(section)
    if not args.no_write:
        write_section(section, BEGIN, END)


if __name__ == "__main__":
    asyncio.run(main())
