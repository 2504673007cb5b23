"""The agent's transcript in the database (``agent_messages``), one row per message and run.

The workflow hands out sequence numbers; activities write at those numbers (a retried activity
overwrites its own rows, so nothing is duplicated) and read the whole run back in order. At the end
of a run the transcript becomes the task's ``conversation`` (what a follow-up run starts from).
"""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy import delete, select, update

from core.db import Database
from core.ids import utcnow
from core.models import AgentMessage, Task
from workflows.types import ChatMessage, ToolCall


def message_from_dict(m: dict) -> ChatMessage:
    return ChatMessage(
        role=m.get("role", "user"),
        content=m.get("content", "") or "",
        tool_calls=[ToolCall(**c) for c in m.get("tool_calls", []) or []],
        tool_call_id=m.get("tool_call_id"),
    )


async def write_messages(db: Database, task_id: str, run_id: str, entries: list[tuple[int, ChatMessage]]) -> None:
    if not entries:
        return
    seqs = [seq for seq, _m in entries]
    async with db.write_session() as s:
        await s.execute(delete(AgentMessage).where(AgentMessage.run_id == run_id, AgentMessage.seq.in_(seqs)))
        s.add_all(
            AgentMessage(task_id=task_id, run_id=run_id, seq=seq, message=asdict(m), created_at=utcnow())
            for seq, m in entries
        )
        await s.commit()


async def read_messages(db: Database, run_id: str) -> list[ChatMessage]:
    async with db.session() as s:
        rows = await s.execute(
            select(AgentMessage.message).where(AgentMessage.run_id == run_id).order_by(AgentMessage.seq)
        )
        return [message_from_dict(m) for m in rows.scalars()]


async def run_conversation(session, run_id: str) -> list[dict]:
    """The run's transcript as ``tasks.conversation`` holds it, read in the caller's session."""
    rows = await session.execute(
        select(AgentMessage.message).where(AgentMessage.run_id == run_id).order_by(AgentMessage.seq)
    )
    return [asdict(message_from_dict(m)) for m in rows.scalars()]


async def save_as_conversation(db: Database, task_id: str, run_id: str) -> int:
    """Copies the run's transcript into ``tasks.conversation``; returns the message count."""
    messages = await read_messages(db, run_id)
    async with db.write_session() as s:
        await s.execute(update(Task).where(Task.id == task_id).values(conversation=[asdict(m) for m in messages]))
        await s.commit()
    return len(messages)
