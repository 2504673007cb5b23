"""Replays every committed golden history (tests/replay/histories/) against the current workflow
code. A change that makes a running workflow non-deterministic fails here; regenerate the files
with ``tests/replay/make_histories.py`` only for a deliberate, versioned change."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from codetether.worker import all_workflows

HISTORIES = sorted((Path(__file__).resolve().parent / "histories").glob("*.json"))
EXPECTED = {
    "task_demo_completed",
    "task_ask_reply_completed",
    "task_cancelled_running",
    "task_failed_provider_400",
    "task_followup_first_run",
    "task_followup_second_run",
    "concurrency_free_user",
    "delivery_retried_then_ok",
    "task_link_reply_completed",
    "task_message_follow_up_recorded",
    # The tool loop (agent-tool-loop-v1 patch).
    "agent_build_tools_completed",
    "agent_ask_mid_loop_completed",
    "agent_plan_completed",
    "agent_cancelled_mid_bash",
}


# Recorded before local-records-v1 (record_event as a full activity per transition, the slot
# released by a signal from the workflow): tasks started on that code must still finish.
EXPECTED |= {f"v0_{name}" for name in EXPECTED}
# Read-only calls run by the model turn itself (ModelTurnResult.tool_results); v1_ was recorded
# before that, with every call its own activity, and keeps proving that such runs still finish.
EXPECTED |= {"agent_build_inline_reads_completed", "v1_agent_build_tools_completed"}


def test_the_golden_set_is_complete():
    assert {p.stem for p in HISTORIES} == EXPECTED


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replay(path: Path):
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=all_workflows(), data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name} no longer replays: {result.replay_failure!r}"


@workflow.defn(name="TaskWorkflow", sandboxed=False)
class ReorderedTaskWorkflow:
    """Stands in for an incompatible edit: it sleeps before doing what the recorded run did."""

    @workflow.run
    async def run(self, inp: dict) -> None:
        await workflow.sleep(1)


async def test_an_incompatible_change_is_caught():
    path = next(p for p in HISTORIES if p.stem == "task_demo_completed")
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=[ReorderedTaskWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is not None
