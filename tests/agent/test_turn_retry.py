"""A retried model turn answers from the transcript before it, never from what an earlier
attempt of the same turn already wrote (an attempt that timed out after writing its answer)."""

from __future__ import annotations

import httpx
from temporalio.testing import ActivityEnvironment

from codetether.agent.activities import AgentActivities
from codetether.agent.catalog import ModelCatalog
from codetether.tasks.events import EventRecorder
from codetether.core.ids import new_id
from codetether.tasks.launch import NewTask, _new_row
from codetether.agent.transcript import read_messages, write_messages
from codetether.agent.contracts import ChatMessage, ModelTurnInput, ToolCall


async def test_a_retried_turn_does_not_see_its_own_earlier_answer(settings, db, user):
    row = _new_row(new_id("task"), NewTask(owner_id=user.user_id, title="Retry", description="Paint it"))
    async with db.session() as s:
        s.add(row)
        await s.commit()
    task_id, run_id = row.id, row.run_id
    await write_messages(db, task_id, run_id, [(0, ChatMessage(role="user", content="Paint it\nASK: Which color?"))])
    # Attempt 1 asked and stored its answer at seq 1, then its completion never reached Temporal.
    earlier = ChatMessage(role="assistant", content="", tool_calls=[
        ToolCall(id="call_1_0", name="ask_user", arguments={"question": "Which color?"})])
    await write_messages(db, task_id, run_id, [(1, earlier)])
    async with httpx.AsyncClient() as http:
        acts = AgentActivities(settings=settings, db=db, recorder=EventRecorder(db),
                               catalog=ModelCatalog.from_settings(settings), http_client=http)
        env = ActivityEnvironment()
        turn = await env.run(acts.model_turn, ModelTurnInput(task_id=task_id, run_id=run_id, owner_id="usr_x",
                                                             model="demo", agent_type="general", seq=1))
    # The retry asks again (what attempt 1 decided), rather than treating the question as answered.
    assert turn.kind == "tools" and [c.name for c in turn.tool_calls] == ["ask_user"], turn
    assert len(await read_messages(db, run_id)) == 2
