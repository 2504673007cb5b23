"""Orphaned tasks (a row whose workflow never started because the API died in between) are
started by the reconciler the workers run; tasks whose workflow exists are left alone."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from codetether.core.models import Task, TaskEvent
from codetether.tasks.reconcile import reconcile_orphans
from codetether.tasks.launch import NewTask, _new_row
from tests.conftest import running_stack, wait_status


async def _events(db, task_id: str) -> list[str]:
    async with db.session() as s:
        return list((await s.execute(select(TaskEvent.type).where(TaskEvent.task_id == task_id).order_by(TaskEvent.seq))).scalars())


async def test_row_without_workflow_is_started_once(stack, user):
    # What a create leaves behind when the API dies after the insert and before the start.
    row = _new_row("task_orphan" + user.user_id[-12:], NewTask(owner_id=user.user_id, title="Orphan", description="hello"))
    async with stack.db.write_session() as s:
        s.add(row)
        await s.commit()

    started = await reconcile_orphans(stack.db, stack.client, stack.settings, older_than=timedelta(0), user_id=user.user_id)
    assert started == [row.id]
    done = await wait_status(stack.http, row.id, user.headers, {"completed", "failed"})
    assert done["status"] == "completed", done
    assert done["run_id"] == row.run_id

    # Nothing to do the second time: the run exists (and has ended).
    assert await reconcile_orphans(stack.db, stack.client, stack.settings, older_than=timedelta(0), user_id=user.user_id) == []
    transitions = [e for e in await _events(stack.db, row.id) if e != "task.progress"]
    assert transitions == ["task.created", "task.started", "task.completed"]


async def test_follow_up_whose_start_was_lost_is_started(stack, user):
    r = await stack.http.post("/v1/automation/tasks", json={"title": "Chat", "description": "first"}, headers=user.headers)
    task_id = r.json()["task_id"]
    first = await wait_status(stack.http, task_id, user.headers, {"completed"})

    # What the message route writes before starting a follow-up run, with no run started after it.
    async with stack.db.write_session() as s:
        await s.execute(
            update(Task)
            .where(Task.id == task_id)
            .values(run_id="run_lostfollowup", status="queued", run_count=Task.run_count + 1, started_at=None,
                    completed_at=None, result=None, result_summary=None, pending_message="and a second thing")
        )
        await s.commit()

    started = await reconcile_orphans(stack.db, stack.client, stack.settings, older_than=timedelta(0), user_id=user.user_id)
    assert started == [task_id]
    done = await wait_status(stack.http, task_id, user.headers, {"completed", "failed"})
    assert done["status"] == "completed", done
    assert done["run_id"] == "run_lostfollowup" != first["run_id"]
    assert "follow-up message 1" in done["result"]
    assert await reconcile_orphans(stack.db, stack.client, stack.settings, older_than=timedelta(0), user_id=user.user_id) == []


async def test_queued_task_with_a_workflow_is_left_alone(settings, temporal_env, db, user):
    async with running_stack(settings, temporal_env.client, db, worker=False) as s:
        r = await s.http.post("/v1/automation/tasks", json={"title": "Waits", "description": "no worker"}, headers=user.headers)
        assert r.status_code == 201
        task_id = r.json()["task_id"]
        assert task_id not in await reconcile_orphans(db, temporal_env.client, settings, older_than=timedelta(0), user_id=user.user_id)
        await temporal_env.client.get_workflow_handle(task_id).terminate(reason="test cleanup")
