"""Which run of a CodeTether task an A2A task is, and what that run exchanged.

An A2A context is one CodeTether task (its conversation): ``contextId`` is the ``task_id``. Each
run of the task is one A2A task: the first run's A2A id is the ``task_id`` itself (so REST and A2A
name a new task alike), a follow-up run's is its ``run_id``. A finished run stays finished: a
message to it is refused, and a message naming only the context starts the next run.

The history of a run is read from the task's event log (``codetether/tasks/events.py``): the
user's first message (``task.created``: the task's description, the text as sent), follow-up
messages and answers (``task.message``), the agent's questions (``task.needs_input``) and its
final answer (``task.completed``). A past run's status is its last recorded status event.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from a2a.types.a2a_pb2 import Message, Part, Role
from sqlalchemy import select

from codetether.core.db import Database
from codetether.core.ids import parse_iso
from codetether.core.models import Task, TaskEvent
from codetether.tasks.contracts import MESSAGE_EVENT, TERMINAL_STATUSES

CREATED = "task.created"
# The events an A2A view reads (progress notes are left out: they can be many).
STATUS_OF_EVENT = {
    CREATED: "queued",
    "task.started": "running",
    "task.needs_input": "needs_input",
    "task.completed": "completed",
    "task.failed": "failed",
    "task.cancelled": "cancelled",
}
VIEW_EVENTS = (*STATUS_OF_EVENT, MESSAGE_EVENT)


@dataclass
class RunState:
    """One run of a task as an A2A task: what ``a2a_view.to_a2a_task`` shows."""

    a2a_id: str
    context_id: str
    run_id: str
    status: str
    title: str
    model: str
    agent_type: str
    updated_at: datetime | None = None
    required_action: dict[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None
    progress: dict[str, Any] | None = None
    result: str | None = None
    # The structured answer when the task has an output_schema (CONTRACT §11).
    result_json: dict[str, Any] | None = None
    current: bool = True
    history: list[Message] = field(default_factory=list)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


async def load_view_events(db: Database, task_ids: list[str]) -> dict[str, list[TaskEvent]]:
    """The events the views of these tasks need, per task, in order."""
    out: dict[str, list[TaskEvent]] = defaultdict(list)
    if not task_ids:
        return out
    async with db.session() as s:
        rows = await s.execute(
            select(TaskEvent)
            .where(TaskEvent.task_id.in_(task_ids), TaskEvent.type.in_(VIEW_EVENTS))
            .order_by(TaskEvent.task_id, TaskEvent.seq)
        )
        for event in rows.scalars():
            out[event.task_id].append(event)
    return out


def first_run_id(task: Task, events: list[TaskEvent]) -> str:
    created = next((e for e in events if e.type == CREATED), None)
    return created.run_id if created is not None else task.run_id


def a2a_id(task: Task, run_id: str, events: list[TaskEvent]) -> str:
    return task.id if run_id == first_run_id(task, events) else run_id


def run_ids(task: Task, events: list[TaskEvent]) -> list[str]:
    """The task's runs, oldest first."""
    out: list[str] = []
    for event in events:
        if event.run_id not in out:
            out.append(event.run_id)
    if task.run_id not in out:
        out.append(task.run_id)
    return out


def _message(run: RunState, role: int, text: str, message_id: str) -> Message:
    return Message(message_id=message_id, context_id=run.context_id, task_id=run.a2a_id, role=role,
                   parts=[Part(text=text)])


def _history(task: Task, run: RunState, events: list[TaskEvent], first: bool) -> list[Message]:
    out: list[Message] = []
    opened = False
    for event in events:
        payload = json.loads(event.body)
        data = payload.get("data") or {}
        if event.type == CREATED and data.get("description"):
            out.append(_message(run, Role.ROLE_USER, data["description"], event.id))
            opened = True
        elif event.type == MESSAGE_EVENT and (payload.get("message") or {}).get("text"):
            out.append(_message(run, Role.ROLE_USER, payload["message"]["text"], event.id))
            opened = True
        elif event.type == "task.needs_input" and (data.get("required_action") or {}).get("prompt"):
            out.append(_message(run, Role.ROLE_AGENT, data["required_action"]["prompt"], event.id))
        elif event.type == "task.completed" and data.get("result"):
            out.append(_message(run, Role.ROLE_AGENT, data["result"], event.id))
    if not opened:
        # The run's opening is not recorded yet: the first message is the task's description, a
        # follow-up's the message waiting to start it.
        opening = task.description if first else (task.pending_message if run.current else None)
        if opening:
            out.insert(0, _message(run, Role.ROLE_USER, opening, f"{run.run_id}-opening"))
    return out


def run_state(task: Task, run_id: str, events: list[TaskEvent]) -> RunState:
    """The A2A view of run ``run_id`` of ``task``; ``events``: the task's view events."""
    first = run_id == first_run_id(task, events)
    mine = [e for e in events if e.run_id == run_id]
    run = RunState(a2a_id=task.id if first else run_id, context_id=task.id, run_id=run_id, status=task.status,
                   title=task.title, model=task.model, agent_type=task.agent_type)
    if run_id == task.run_id:
        run.updated_at = task.updated_at
        run.required_action, run.progress, run.result = task.required_action, task.progress, task.result
        run.result_json = task.result_json
        run.error_code, run.error_message = task.error_code, task.error_message
    else:
        run.current = False
        last = next((e for e in reversed(mine) if e.type in STATUS_OF_EVENT), None)
        payload = json.loads(last.body) if last is not None else {}
        data = payload.get("data") or {}
        run.status = STATUS_OF_EVENT[last.type] if last is not None else "cancelled"
        if run.status not in TERMINAL_STATUSES:
            # A superseded run ended, whatever it recorded last (only finished tasks get follow-ups).
            run.status = "cancelled"
        run.updated_at = parse_iso(payload.get("created_at")) or (last.created_at if last is not None else None)
        run.result = data.get("result")
        run.result_json = data.get("result_json")
        error = data.get("error") or {}
        run.error_code, run.error_message = error.get("code"), error.get("message")
    run.history = _history(task, run, mine, first)
    return run


async def current_states(db: Database, tasks: list[Task]) -> list[RunState]:
    """The current run of each task."""
    events = await load_view_events(db, [t.id for t in tasks])
    return [run_state(t, t.run_id, events.get(t.id, [])) for t in tasks]


async def all_states(db: Database, task: Task) -> list[RunState]:
    """Every run of the task (the A2A tasks of its context), newest first."""
    events = (await load_view_events(db, [task.id])).get(task.id, [])
    return [run_state(task, r, events) for r in reversed(run_ids(task, events))]


async def find_run(db: Database, a2a_task_id: str, user_id: str) -> tuple[Task, str] | None:
    """The caller's task and run an A2A task id names, or None (another user's is None too)."""
    async with db.session() as s:
        task = await s.get(Task, a2a_task_id)
        run_id = None if task is not None else a2a_task_id
        if task is None:
            task = (await s.execute(
                select(Task).where(Task.user_id == user_id, Task.run_id == a2a_task_id)
            )).scalars().first()
        if task is None:
            owner = (await s.execute(
                select(TaskEvent.task_id).where(TaskEvent.run_id == a2a_task_id, TaskEvent.user_id == user_id).limit(1)
            )).scalar_one_or_none()
            task = await s.get(Task, owner) if owner is not None else None
    if task is None or task.user_id != user_id:
        return None
    if run_id is None:
        events = (await load_view_events(db, [task.id])).get(task.id, [])
        run_id = first_run_id(task, events)
    return task, run_id


async def state_of(db: Database, task: Task, run_id: str) -> RunState:
    events = (await load_view_events(db, [task.id])).get(task.id, [])
    return run_state(task, run_id, events)


async def a2a_id_of_run(db: Database, task: Task, run_id: str) -> str:
    """The A2A task id of one run of ``task`` (for a push notification of one of its events)."""
    if (task.run_count or 1) <= 1:
        return task.id
    async with db.session() as s:
        first = (await s.execute(
            select(TaskEvent.run_id).where(TaskEvent.task_id == task.id, TaskEvent.type == CREATED).limit(1)
        )).scalar_one_or_none()
    return task.id if run_id == (first or task.run_id) else run_id
