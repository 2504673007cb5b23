"""What a task costs in Temporal (lean-task-v1), counted from real histories on the dev server,
and the batch recorder's guarantees: a step's events land together, once."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select
from temporalio.api.enums.v1 import EventType

from codetether.tasks.events import EventRecorder, NewEvent
from codetether.core.models import Task, TaskEvent
from codetether.tasks.launch import NewTask, create_task
from tests.conftest import wait_status
from codetether.tasks.contracts import TaskChanges

TASKS = "/v1/automation/tasks"


async def _counts(stack, task_id: str) -> Counter:
    history = await stack.client.get_workflow_handle(task_id).fetch_history()
    return Counter(EventType.Name(e.event_type) for e in history.events)


async def test_a_demo_task_of_an_unlimited_user_is_two_workflow_tasks_and_one_activity(stack, user):
    r = await stack.http.post(TASKS, json={"title": "Cost", "description": "Summarize this.", "model": "demo"},
                              headers=user.headers)
    assert r.status_code == 201, r.text
    task_id = r.json()["task_id"]
    done = await wait_status(stack.http, task_id, user.headers, {"completed", "failed"})
    assert done["status"] == "completed", done
    c = await _counts(stack, task_id)
    assert c["EVENT_TYPE_WORKFLOW_TASK_COMPLETED"] <= 3, c
    assert c["EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"] <= 2, c
    # What a user sees is unchanged: every transition in the log, once, in order.
    events = (await stack.http.get(f"{TASKS}/{task_id}/events", headers=user.headers)).json()["data"]
    types = [e["event"] for e in events]
    assert types[0] == "task.created" and types[1] == "task.started" and types[-1] == "task.completed", types
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    # No tool ran, so no workspace was made; the agent's result fields are still there.
    assert done["changes"] == {"files": [], "additions": 0, "deletions": 0}
    assert done["usage"]["turns"] == 1 and done["artifacts"] == []
    # The transcript became the conversation (what a follow-up starts from).
    r = await stack.http.post(f"{TASKS}/{task_id}/messages", json={"message": "Once more."}, headers=user.headers)
    assert r.status_code in (200, 201, 202), r.text
    again = await wait_status(stack.http, task_id, user.headers, {"completed", "failed"})
    assert again["status"] == "completed" and "follow-up message 1" in again["result"], again


async def test_a_free_tier_task_goes_through_its_slot_in_three_workflow_tasks(stack, make_user):
    free = await make_user("free")
    r = await stack.http.post(TASKS, json={"title": "Cost", "description": "Summarize this.", "model": "demo"},
                              headers=free.headers)
    task_id = r.json()["task_id"]
    done = await wait_status(stack.http, task_id, free.headers, {"completed", "failed"})
    assert done["status"] == "completed", done
    c = await _counts(stack, task_id)
    assert c["EVENT_TYPE_WORKFLOW_TASK_COMPLETED"] <= 3, c
    assert c["EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"] <= 1, c
    # The grant arrives as a signal; the release rides on the ending record (no signal command).
    assert c["EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED"] == 1, c
    assert c["EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED"] == 0, c


async def test_a_batch_is_recorded_once_and_in_order(stack, user):
    task = await create_task(
        stack.db, stack.client, stack.settings,
        NewTask(owner_id=user.user_id, title="Batch", description="Summarize this.", model="demo"),
    )
    await wait_status(stack.http, task.id, user.headers, {"completed", "failed"})
    recorder = EventRecorder(stack.db)
    batch = [
        NewEvent("evt_batchtest0000000000000001", "task.message", TaskChanges(),
                 details={"kind": "note", "text": "one"}),
        NewEvent("evt_batchtest0000000000000002", None, TaskChanges(result="kept")),
        NewEvent("evt_batchtest0000000000000003", "task.message", TaskChanges(),
                 details={"kind": "note", "text": "two"}),
    ]
    first = await recorder.record_many(task.id, task.run_id, batch)
    again = await recorder.record_many(task.id, task.run_id, batch)  # a retry after the commit
    assert [e.id if e else None for e in first] == [e.id if e else None for e in again]
    async with stack.db.session() as s:
        rows = (await s.execute(select(TaskEvent).where(TaskEvent.task_id == task.id).order_by(TaskEvent.seq))).scalars().all()
    ids = [r.id for r in rows]
    assert ids.count("evt_batchtest0000000000000001") == 1 and ids.count("evt_batchtest0000000000000003") == 1
    assert ids.index("evt_batchtest0000000000000001") + 1 == ids.index("evt_batchtest0000000000000003")
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))


async def test_each_progress_report_is_its_own_event(stack, user):
    """Progress is recorded without looking for an earlier copy (its ids are new each time): every
    report is still one event, in order, with the task's next seq."""
    task = await create_task(
        stack.db, stack.client, stack.settings,
        NewTask(owner_id=user.user_id, title="Progress", description="Summarize this.", model="demo"),
    )
    await wait_status(stack.http, task.id, user.headers, {"completed", "failed"})
    recorder = EventRecorder(stack.db)
    first = await recorder.record_progress(task.id, task.run_id, {"message": "one", "percent": None})
    second = await recorder.record_progress(task.id, task.run_id, {"message": "two", "percent": 50})
    assert first.id != second.id and second.seq == first.seq + 1
    async with stack.db.session() as s:
        rows = (await s.execute(select(TaskEvent).where(TaskEvent.task_id == task.id).order_by(TaskEvent.seq))).scalars().all()
        row = await s.get(Task, task.id)
    assert [r.id for r in rows][-2:] == [first.id, second.id]
    assert row.progress == {"message": "two", "percent": 50} and row.last_seq == second.seq
