"""A stream learns of a new event without waiting for its poll (``codetether/tasks/eventnotify.py``):
through the local bus in the writer's own process, and through ``NOTIFY`` on PostgreSQL (a
commit in another process). The watcher's poll is set to an hour here, so only a notice can wake
it in time."""

from __future__ import annotations

import asyncio

import pytest

from codetether.core.ids import new_id, utcnow
from codetether.core.models import Task
from codetether.tasks.contracts import TaskChanges
from codetether.tasks.events import EventRecorder, NewEvent
from codetether.tasks.eventstream import TaskSeqWatcher


async def _task(db, make_user) -> Task:
    user = await make_user()
    now = utcnow()
    task = Task(id=new_id("task"), user_id=user.user_id, run_id=new_id("run"), title="t", description="d",
                agent_type="general", model="demo", status="queued", created_at=now, updated_at=now,
                metadata_={}, conversation=[])
    async with db.session() as s:
        s.add(task)
        await s.commit()
    return task


async def _woken_by_a_new_event(db, watcher: TaskSeqWatcher, task: Task) -> None:
    async with watcher.watch(task.id, known_seq=0) as sub:
        await asyncio.sleep(0.3)  # the watcher's first (immediate) poll is over; the next is an hour away
        waiting = asyncio.create_task(sub.wait_beyond(0, timeout=60))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        await EventRecorder(db).record_many(task.id, task.run_id, [
            NewEvent(event_id=new_id("evt"), event_type="task.started", changes=TaskChanges(status="running"))])
        assert await asyncio.wait_for(waiting, 10) is True
        assert watcher.last_seq(task.id) == 1


async def test_the_writers_own_process_wakes_the_stream_through_the_local_bus(db, make_user):
    watcher = TaskSeqWatcher(db, interval=3600, listen=False)
    try:
        await _woken_by_a_new_event(db, watcher, await _task(db, make_user))
    finally:
        await watcher.close()


@pytest.mark.postgres
async def test_postgres_notify_wakes_the_stream_of_another_process(db, make_user):
    if db.is_sqlite:
        pytest.skip("NOTIFY is PostgreSQL's (this run uses SQLite)")
    watcher = TaskSeqWatcher(db, interval=3600)
    # Deaf to this process's bus, as an API process beside the worker would be.
    watcher._unsubscribe()
    try:
        watcher.listener.start()
        for _ in range(200):
            if watcher.listener.connected:
                break
            await asyncio.sleep(0.05)
        assert watcher.listener.connected
        await _woken_by_a_new_event(db, watcher, await _task(db, make_user))
    finally:
        await watcher.close()
