"""The agent's transcript in the database (``agent_messages``), one row per message and run.

The workflow hands out sequence numbers; activities write at those numbers (a retried activity
overwrites its own rows, so nothing is duplicated) and read the whole run back in order. At the end
of a run the transcript becomes the task's ``conversation`` (what a follow-up run starts from).
"""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy import delete, insert, select, update

from codetether.core.db import Database
from codetether.core.ids import utcnow
from codetether.core.models import AgentMessage, Task
from codetether.agent.contracts import ChatMessage, ToolCall


def message_from_dict(m: dict) -> ChatMessage:
    return ChatMessage(
        role=m.get("role", "user"),
        content=m.get("content", "") or "",
        tool_calls=[ToolCall(**c) for c in m.get("tool_calls", []) or []],
        tool_call_id=m.get("tool_call_id"),
        provider_data=m.get("provider_data"),
    )


async def write_messages(db: Database, task_id: str, run_id: str, entries: list[tuple[int, ChatMessage]]) -> None:
    if not entries:
        return
    seqs = [seq for seq, _m in entries]
    async with db.write_session() as s:
        await s.execute(delete(AgentMessage).where(AgentMessage.run_id == run_id, AgentMessage.seq.in_(seqs)))
        # One multi-row INSERT (the ORM would insert row by row to learn each id).
        now = utcnow()
        await s.execute(insert(AgentMessage), [
            {"task_id": task_id, "run_id": run_id, "seq": seq, "message": asdict(m), "created_at": now}
            for seq, m in entries
        ])
        await s.commit()


def _transcript(run_id: str, before_seq: int | None = None):
    query = select(AgentMessage.message).where(AgentMessage.run_id == run_id)
    if before_seq is not None:
        query = query.where(AgentMessage.seq < before_seq)
    return query.order_by(AgentMessage.seq)


async def read_messages(db: Database, run_id: str, before_seq: int | None = None) -> list[ChatMessage]:
    """The run's transcript in order; with ``before_seq`` only what precedes that seq (a retried
    model turn must not see the answer an earlier attempt of it already wrote)."""
    async with db.session() as s:
        rows = await s.execute(_transcript(run_id, before_seq))
        return [message_from_dict(m) for m in rows.scalars()]


async def run_conversation(session, run_id: str) -> list[dict]:
    """The run's transcript as ``tasks.conversation`` holds it, read in the caller's session."""
    rows = await session.execute(_transcript(run_id))
    return [asdict(message_from_dict(m)) for m in rows.scalars()]


async def save_as_conversation(db: Database, task_id: str, run_id: str) -> int:
    """Copies the run's transcript into ``tasks.conversation``; returns the message count."""
    async with db.write_session() as s:
        conversation = await run_conversation(s, run_id)
        await s.execute(update(Task).where(Task.id == task_id).values(conversation=conversation))
        await s.commit()
    return len(conversation)
