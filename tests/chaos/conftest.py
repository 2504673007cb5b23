"""Fixtures of the chaos suite: a cluster of real processes (Temporal dev server on a SQLite file,
``codetether api`` and ``codetether worker``) on random ports in a temporary directory, always torn
down, with the processes' logs attached to a failing test's report."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from codetether.core.config import Settings
from codetether.core.db import Database
from codetether.core.models import Task, TaskEvent
from codetether.core.temporal import connect
from tests.production.procs import Cluster, unexpected_stderr

TERMINAL = {"completed", "failed", "cancelled"}


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    cluster = getattr(item, "_cluster", None)
    if report.failed and cluster is not None:
        report.sections.append(("cluster logs", cluster.logs()))


@pytest_asyncio.fixture
async def cluster(request, tmp_path, database_url, db) -> AsyncIterator[Cluster]:
    # A short idempotency lock, so the retries after a killed API do not wait the default minute.
    c = Cluster(tmp_path / "cluster", database_url, extra_env={"CODETETHER_IDEMPOTENCY_LOCK_SECONDS": "8"})
    request.node._cluster = c
    try:
        yield c
    finally:
        await asyncio.to_thread(c.close)
    for proc in c.procs:
        bad = unexpected_stderr(proc.tail(100_000))
        assert not bad, f"{proc.name}: {bad}"


def cluster_settings(c: Cluster) -> Settings:
    return Settings(
        database_url=c.database_url, temporal_address=f"127.0.0.1:{c.temporal_port}", temporal_task_queue=c.task_queue
    )


async def temporal_client(c: Cluster):
    return await connect(cluster_settings(c))


async def wait_task(
    http: httpx.AsyncClient, task_id: str, headers: dict, done, timeout: float = 90, what: str = ""
) -> dict:
    """Polls GET /tasks/{id}?wait=1 until ``done(task)``; tolerates an API that is restarting."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: dict | None = None
    while loop.time() < deadline:
        try:
            r = await http.get(f"/v1/automation/tasks/{task_id}", params={"wait": 1}, headers=headers, timeout=10)
            if r.status_code == 200:
                last = r.json()
                if done(last):
                    return last
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"task {task_id} never reached {what or done}: {last}")


async def event_counts(db: Database, task_ids: list[str]) -> dict[str, dict[str, int]]:
    async with db.session() as s:
        rows = (
            await s.execute(
                select(TaskEvent.task_id, TaskEvent.type, func.count())
                .where(TaskEvent.task_id.in_(task_ids))
                .group_by(TaskEvent.task_id, TaskEvent.type)
            )
        ).all()
    out: dict[str, dict[str, int]] = {t: {} for t in task_ids}
    for task_id, event_type, n in rows:
        out[task_id][event_type] = n
    return out


async def tasks_of(db: Database, user_id: str) -> list[Task]:
    async with db.session() as s:
        return list((await s.execute(select(Task).where(Task.user_id == user_id))).scalars())


async def assert_no_loss_no_duplicates(db: Database, user_id: str, expected: int) -> dict[str, int]:
    """Every task the user made reached exactly one terminal event; returns the figures."""
    tasks = await tasks_of(db, user_id)
    ids = [t.id for t in tasks]
    counts = await event_counts(db, ids)
    completed = [t for t in tasks if t.status == "completed"]
    lost = expected - len(completed)
    duplicate_tasks = max(0, len(tasks) - expected)
    duplicate_events = sum(
        max(0, sum(n for e, n in counts[t].items() if e in ("task.completed", "task.failed", "task.cancelled")) - 1)
        + max(0, counts[t].get("task.created", 0) - 1)
        for t in ids
    )
    figures = {"tasks": expected, "completed": len(completed), "lost": lost,
               "duplicate_tasks": duplicate_tasks, "duplicate_terminal_events": duplicate_events}
    print(f"chaos figures: {figures}")
    assert figures["lost"] == 0 and duplicate_tasks == 0 and duplicate_events == 0, (figures, counts)
    return figures
