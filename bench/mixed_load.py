"""Mixed load on the embedded stack for a fixed time: creates, gets, lists, SSE streams that
follow tasks to their end, and webhooks delivered to a local receiver. Reports the error rate and
latency percentiles per operation.

    .venv/bin/python bench/mixed_load.py [--seconds 60] [--creators 2] [--readers 4] [--streams 2] [--no-write]

Starts ``codetether dev`` on random free ports with a temporary data directory (Temporal dev
server, one worker, the API; SQLite), uses its bootstrap key (enterprise: not rate limited),
subscribes a webhook to ``task.completed`` and runs:

* creators: ``POST /v1/automation/tasks`` (demo model) in a loop;
* readers: ``GET /v1/automation/tasks/{id}`` of a recent task and ``GET /v1/automation/tasks``;
* streams: ``GET /v1/automation/tasks/{id}/events`` as SSE from creation to the terminal event
  (time to the terminal event is recorded);
* the receiver counts webhook deliveries; after the load every created task must have completed
  and been delivered once.

Writes its table to docs/performance.md between the ``mixed-load`` markers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import PRODUCTION_END, pct, write_section  # noqa: E402
from tests.production.procs import free_port, port_open, wait_until  # noqa: E402
from tests.support.receiver import Receiver  # noqa: E402


class Stats:
    def __init__(self) -> None:
        self.lat: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.error_samples: list[str] = []

    def ok(self, op: str, seconds: float) -> None:
        self.lat[op].append(seconds)

    def fail(self, op: str, what: str) -> None:
        self.errors[op] += 1
        if len(self.error_samples) < 10:
            self.error_samples.append(f"{op}: {what}")


async def run_load(args, base: str, key: str) -> tuple[Stats, dict]:
    headers = {"Authorization": f"Bearer {key}"}
    loop = asyncio.get_running_loop()

    def quiet_cancelled(loop, context) -> None:
        # The receiver closes kept-alive webhook connections at the end; their cancelled
        # handlers are expected, not errors.
        if not isinstance(context.get("exception"), asyncio.CancelledError):
            loop.default_exception_handler(context)

    loop.set_exception_handler(quiet_cancelled)
    stats = Stats()
    created: list[str] = []
    stream_queue: asyncio.Queue[str] = asyncio.Queue()
    stop_at = time.perf_counter() + args.seconds
    limits = httpx.Limits(max_connections=64)

    async with Receiver() as receiver, httpx.AsyncClient(base_url=base, timeout=90, limits=limits) as http:
        r = await http.post("/v1/webhooks", json={"url": receiver.url, "events": ["task.completed"]}, headers=headers)
        r.raise_for_status()

        async def creator(n: int) -> None:
            i = 0
            while time.perf_counter() < stop_at:
                i += 1
                t0 = time.perf_counter()
                try:
                    r = await http.post(
                        "/v1/automation/tasks", json={"title": f"load {n}.{i}", "description": "hello"}, headers=headers
                    )
                except httpx.HTTPError as err:
                    stats.fail("POST /tasks", repr(err))
                    continue
                if r.status_code == 201:
                    stats.ok("POST /tasks", time.perf_counter() - t0)
                    task_id = r.json()["task_id"]
                    created.append(task_id)
                    if args.streams and stream_queue.qsize() < args.streams * 4:
                        stream_queue.put_nowait(task_id)
                else:
                    stats.fail("POST /tasks", f"{r.status_code} {r.text[:200]}")

        async def reader() -> None:
            while time.perf_counter() < stop_at:
                if not created:
                    await asyncio.sleep(0.05)
                    continue
                task_id = random.choice(created[-50:])
                for op, call in (
                    ("GET /tasks/{id}", lambda: http.get(f"/v1/automation/tasks/{task_id}", headers=headers)),
                    ("GET /tasks", lambda: http.get("/v1/automation/tasks", params={"limit": 20}, headers=headers)),
                ):
                    t0 = time.perf_counter()
                    try:
                        r = await call()
                    except httpx.HTTPError as err:
                        stats.fail(op, repr(err))
                        continue
                    if r.status_code == 200:
                        stats.ok(op, time.perf_counter() - t0)
                    else:
                        stats.fail(op, f"{r.status_code} {r.text[:200]}")

        async def streamer() -> None:
            while time.perf_counter() < stop_at:
                try:
                    task_id = await asyncio.wait_for(stream_queue.get(), timeout=1)
                except asyncio.TimeoutError:
                    continue
                t0 = time.perf_counter()
                terminal = False
                try:
                    async with http.stream(
                        "GET", f"/v1/automation/tasks/{task_id}/events",
                        headers={**headers, "Accept": "text/event-stream"},
                    ) as r:
                        if r.status_code != 200:
                            stats.fail("SSE to terminal event", str(r.status_code))
                            continue
                        async for line in r.aiter_lines():
                            if line.startswith("event:") and line.split(":", 1)[1].strip() in (
                                "task.completed", "task.failed", "task.cancelled"
                            ):
                                terminal = True
                except httpx.HTTPError as err:
                    stats.fail("SSE to terminal event", repr(err))
                    continue
                if terminal:
                    stats.ok("SSE to terminal event", time.perf_counter() - t0)
                else:
                    stats.fail("SSE to terminal event", "stream ended without a terminal event")

        workers = [creator(n) for n in range(args.creators)]
        workers += [reader() for _ in range(args.readers)]
        workers += [streamer() for _ in range(args.streams)]
        started = time.perf_counter()
        await asyncio.gather(*workers)
        elapsed = time.perf_counter() - started

        # Drain: every created task completes and its task.completed webhook arrives.
        drain_start = time.perf_counter()
        pending = set(created)
        while pending and time.perf_counter() - drain_start < 300:
            await asyncio.sleep(0.5)
            statuses = await asyncio.gather(
                *(http.get(f"/v1/automation/tasks/{t}", headers=headers) for t in list(pending)[:50])
            )
            for resp in statuses:
                body = resp.json()
                if body["status"] in ("completed", "failed", "cancelled"):
                    pending.discard(body["task_id"])
                    if body["status"] != "completed":
                        stats.fail("task outcome", body["status"])
        try:
            await receiver.wait_for(len(created), timeout=120)
        except asyncio.TimeoutError:
            pass
        webhook_ids = [req.headers.get("webhook-id") for req in receiver.requests]
        summary = {
            "seconds": elapsed,
            "tasks_created": len(created),
            "tasks_unfinished": len(pending),
            "webhooks_received": len(webhook_ids),
            "webhook_duplicates": len(webhook_ids) - len(set(webhook_ids)),
        }
    return stats, summary


def start_dev(tmp: Path) -> tuple[subprocess.Popen, int, str]:
    api, temporal, ui = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODETETHER_")}
    env.update(CODETETHER_WEBHOOK_ALLOW_PRIVATE="true", CODETETHER_LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1")
    log = open(tmp / "dev.log", "ab")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "codetether"), "dev", "--api-port", str(api), "--temporal-port", str(temporal),
         "--ui-port", str(ui), "--data-dir", str(tmp / "data")],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    wait_until(lambda: port_open(api) or proc.poll() is not None, 120, "codetether dev API")
    if proc.poll() is not None:
        raise SystemExit((tmp / "dev.log").read_text())
    key = (tmp / "data" / "bootstrap_api_key").read_text().strip()
    return proc, api, key


def stop_dev(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--creators", type=int, default=2)
    ap.add_argument("--readers", type=int, default=4)
    ap.add_argument("--streams", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="ct-mixed-") as tmp_s:
        tmp = Path(tmp_s)
        proc, port, key = start_dev(tmp)
        try:
            stats, summary = asyncio.run(run_load(args, f"http://127.0.0.1:{port}", key))
        finally:
            stop_dev(proc)

    load = (load_before + os.getloadavg()[0]) / 2
    total_ok = sum(len(v) for v in stats.lat.values())
    total_err = sum(stats.errors.values())
    rows = [
        "| operation | ok | errors | p50 ms | p90 ms | p99 ms | max ms |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for op in sorted(set(stats.lat) | set(stats.errors)):
        lat = stats.lat.get(op, [])
        if lat:
            rows.append(
                f"| `{op}` | {len(lat)} | {stats.errors.get(op, 0)} | {statistics.median(lat) * 1000:.1f} "
                f"| {pct(lat, 90) * 1000:.1f} | {pct(lat, 99) * 1000:.1f} | {max(lat) * 1000:.1f} |"
            )
        else:
            rows.append(f"| `{op}` | 0 | {stats.errors.get(op, 0)} | | | | |")
    rate = total_err / max(1, total_ok + total_err)
    print(summary)
    section = "\n".join(
        [
            "<!-- mixed-load:begin -->",
            "### Mixed load on the embedded stack (issue 7)",
            "",
            f"Command: `.venv/bin/python bench/mixed_load.py --seconds {args.seconds:g} --creators {args.creators} "
            f"--readers {args.readers} --streams {args.streams}` (`codetether dev` on random ports: Temporal dev "
            f"server, one worker, one API, SQLite; measured {time.strftime('%Y-%m-%d')} on the shared 2-core "
            f"machine while other work ran: 1-minute load average ~{load:.0f}). `SSE to terminal event` is "
            "the time from opening the stream right after creation to receiving `task.completed`, i.e. the "
            "task's whole run under this load.",
            "",
            *rows,
            "",
            f"**Error rate {rate * 100:.2f} %** ({total_err} of {total_ok + total_err} operations) over "
            f"{summary['seconds']:.0f} s; {summary['tasks_created']} tasks created, "
            f"{summary['tasks_created'] - summary['tasks_unfinished']} completed, "
            f"{summary['webhooks_received']} `task.completed` webhooks received "
            f"({summary['webhook_duplicates']} duplicates).",
            "<!-- mixed-load:end -->",
        ]
    )
    print(section)
    if stats.error_samples:
        print("errors:", *stats.error_samples, sep="\n  ")
    if not args.no_write:
        write_section(section, "<!-- mixed-load:begin -->", "<!-- mixed-load:end -->", before=PRODUCTION_END)


if __name__ == "__main__":
    main()
