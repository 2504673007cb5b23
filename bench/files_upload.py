"""File upload throughput vs a raw write of the same bytes on the same disk, and task creation
with one attachment vs without, measured side by side in one run.

    .venv/bin/python bench/files_upload.py [--size-mib 8] [--files 12] [--rounds 3] [--n 300] [--concurrency 16]

Starts its own Temporal dev server and the API under uvicorn in a subprocess (no worker: creates
measure accepting a task). Upload side: ``POST /v1/automation/files`` over loopback HTTP, one
file at a time (multipart parsing, SHA-256, sniffing, 0600 file + fsync + rename, the row). Raw
side: the same bytes written by a thread to a file in the same data dir, with the same fsync.
Rounds alternate the two sides. Prints a Markdown table and writes it to docs/performance.md
between the ``files-upload`` markers.
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

from bench.common import free_port, pct, run_concurrent, start_temporal, stop_procs, wait_port, write_section  # noqa: E402
from codetether.accounts.service import create_api_key, create_user  # noqa: E402
from codetether.core.config import Settings  # noqa: E402
from codetether.core.db import Database, migrate  # noqa: E402

BEGIN, END = "<!-- files-upload:begin -->", "<!-- files-upload:end -->"
MIB = 1024 * 1024


def raw_write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view[: MIB]):]
        os.fsync(fd)
    finally:
        os.close(fd)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=8)
    ap.add_argument("--files", type=int, default=12, help="files per round and side")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=300, help="creates per round and side")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="ct-bench-files-"))
    t_port, api_port = free_port(), free_port()
    procs: list[subprocess.Popen] = []
    payload = os.urandom(args.size_mib * MIB)
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
            CODETETHER_FILES_QUOTA_BYTES=str(1024 * 1024 * MIB),
            CODETETHER_LOG_LEVEL="WARNING",
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
        raw_dir = tmp / "raw"
        raw_dir.mkdir()
        headers = {"Authorization": f"Bearer {key}"}
        limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", headers=headers, limits=limits,
                                     timeout=120) as http:

            async def upload(i: int) -> str:
                r = await http.post("/v1/automation/files", files={"file": (f"f{i}.bin", payload, "application/octet-stream")})
                r.raise_for_status()
                return r.json()["file_id"]

            await upload(0)
            await asyncio.to_thread(raw_write, raw_dir / "warm", payload)
            up_rates, raw_rates = [], []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                for i in range(args.files):
                    await asyncio.to_thread(raw_write, raw_dir / f"r{i}", payload)
                raw_rates.append(args.files * args.size_mib / (time.perf_counter() - t0))
                t0 = time.perf_counter()
                for i in range(args.files):
                    await upload(i)
                up_rates.append(args.files * args.size_mib / (time.perf_counter() - t0))

            small = await http.post("/v1/automation/files", files={"file": ("notes.csv", b"a,b\n1,2\n", "text/csv")})
            file_id = small.json()["file_id"]

            async def create_plain(i: int) -> None:
                (await http.post("/v1/automation/tasks", json={"title": f"t{i}", "description": "d"})).raise_for_status()

            async def create_attached(i: int) -> None:
                r = await http.post("/v1/automation/tasks", json={"title": f"t{i}", "description": "d",
                                                                  "attachments": [{"file_id": file_id}]})
                r.raise_for_status()

            await run_concurrent(50, args.concurrency, create_plain)
            await run_concurrent(50, args.concurrency, create_attached)
            plain_rates, att_rates, plain_lat, att_lat = [], [], [], []
            for _ in range(args.rounds):
                rate, lat = await run_concurrent(args.n, args.concurrency, create_plain)
                plain_rates.append(rate)
                plain_lat += lat
                rate, lat = await run_concurrent(args.n, args.concurrency, create_attached)
                att_rates.append(rate)
                att_lat += lat
    finally:
        stop_procs(reversed(procs))

    up_med, raw_med = statistics.median(up_rates), statistics.median(raw_rates)
    plain_med, att_med = statistics.median(plain_rates), statistics.median(att_rates)
    cmd = (f".venv/bin/python bench/files_upload.py --size-mib {args.size_mib} --files {args.files} "
           f"--rounds {args.rounds} --n {args.n} --concurrency {args.concurrency}")
    table = "\n".join([
        BEGIN,
        "## File uploads and creates with an attachment",
        "",
        f"Command: `{cmd}` (API under uvicorn, data-dir storage, no worker; {args.rounds} alternating rounds; "
        f"measured {time.strftime('%Y-%m-%d', time.gmtime())} on 2 cores shared with other work: compare the "
        "columns of one table, which ran side by side, rather than absolute numbers).",
        "",
        "| measure | raw write in a thread (+ fsync) | `POST /v1/automation/files` |",
        "| --- | --- | --- |",
        f"| {args.size_mib} MiB files one at a time, MiB/s (median of rounds) | {raw_med:.0f} | {up_med:.0f} |",
        f"| rounds, MiB/s | {', '.join(f'{r:.0f}' for r in raw_rates)} | {', '.join(f'{r:.0f}' for r in up_rates)} |",
        "",
        f"**Upload / raw write: {up_med / raw_med:.2f}** (the upload also crosses loopback HTTP, parses "
        "multipart, hashes SHA-256 and stores the row).",
        "",
        "| measure | create without attachments | create with one `file_id` attachment |",
        "| --- | --- | --- |",
        f"| tasks/s (median of rounds, concurrency {args.concurrency}) | {plain_med:.0f} | {att_med:.0f} |",
        f"| rounds, tasks/s | {', '.join(f'{r:.0f}' for r in plain_rates)} | {', '.join(f'{r:.0f}' for r in att_rates)} |",
        f"| latency p50 / p99, ms | {pct(plain_lat, 50):.1f} / {pct(plain_lat, 99):.1f} | "
        f"{pct(att_lat, 50):.1f} / {pct(att_lat, 99):.1f} |",
        "",
        f"**With attachment / without: {att_med / plain_med:.2f}** (the attachment costs one indexed read of "
        "the file's row on create).",
        END,
    ])
    print(table)
    if not args.no_write:
        write_section(table, BEGIN, END)


if __name__ == "__main__":
    asyncio.run(main())
