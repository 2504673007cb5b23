"""The workspace one run of the tool loop (``codetether/agent/loop.py``) works in, as the workflow
sees it: which worker holds it (that worker's task queue), its last checkpoint, and the
activities that prepare, use, checkpoint, finalize and remove it.

Steps run on the workspace's worker; when that worker is gone (schedule-to-start or heartbeat
timeout, or the copy is missing) the workspace is prepared again elsewhere from the last
checkpoint and the step runs there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError, TimeoutType, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from codetether.agent.contracts import (
        WORKSPACE_ERROR,
        WORKSPACE_MISSING,
        CheckpointInput,
        CleanupInput,
        FinalizeInput,
        FinalizeResult,
        KeepPlanInput,
        KeepPlanResult,
        PrepareWorkspaceInput,
        ToolCall,
        ToolCallInput,
        ToolCallResult,
        WorkspaceInfo,
    )
    from codetether.agent.workspace.activities import WorkspaceActivities
    from codetether.tasks.contracts import TaskInput

# How many times the workspace may move to another worker before the task gives up.
MAX_WORKSPACE_MOVES = 5

HEARTBEAT_TIMEOUT = timedelta(seconds=10)
PREPARE_TIMEOUT = timedelta(minutes=20)
# bash may run 10 minutes; the rest is slack for capturing and storing its output.
TOOL_TIMEOUT = timedelta(minutes=12)
# A tool call that the workspace's worker does not pick up in this long: that worker is gone.
TOOL_SCHEDULE_TO_START = timedelta(seconds=20)
FINALIZE_TIMEOUT = timedelta(minutes=15)
CLEANUP_TIMEOUT = timedelta(minutes=2)

WORKSPACE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=3,
    non_retryable_error_types=[WORKSPACE_ERROR, WORKSPACE_MISSING],
)

T = TypeVar("T")


def _moved(err: ActivityError) -> bool:
    """True when the error means the workspace's worker (or its copy) is gone."""
    cause = err.cause
    if isinstance(cause, TimeoutError) and cause.type in (TimeoutType.SCHEDULE_TO_START, TimeoutType.HEARTBEAT):
        return True
    return isinstance(cause, ApplicationError) and cause.type == WORKSPACE_MISSING


class WorkspaceSession:
    def __init__(self, inp: TaskInput, ws: WorkspaceInfo | None, checkpoint_id: str | None, *, lazy: bool) -> None:
        self.inp = inp
        self.ws = ws
        self.checkpoint_id = checkpoint_id
        # A scratch workspace prepared only when a tool first needs it (see AgentLoop).
        self.lazy = lazy

    async def prepare(self) -> None:
        """Prepares the workspace on some worker: fresh, or again from the last checkpoint."""
        inp = self.inp
        self.ws = await workflow.execute_activity_method(
            WorkspaceActivities.prepare_workspace,
            PrepareWorkspaceInput(
                task_id=inp.task_id, run_id=inp.run_id, owner_id=inp.owner_id,
                codebase_id=inp.codebase_id,
                base_commit=self.ws.base_commit if self.ws is not None else None,
                checkpoint_id=self.checkpoint_id,
                attachments=list(inp.attachments or []),
            ),
            start_to_close_timeout=PREPARE_TIMEOUT,
            heartbeat_timeout=None,
            retry_policy=WORKSPACE_RETRY,
        )

    async def _on_workspace(self, step: Callable[[WorkspaceInfo], Awaitable[T]]) -> T:
        """Runs ``step(workspace)`` on the workspace's worker, moving the workspace if it is gone."""
        if self.ws is None:
            await self.prepare()
        for _ in range(MAX_WORKSPACE_MOVES):
            try:
                return await step(self.ws)
            except ActivityError as err:
                if not _moved(err):
                    raise
            workflow.logger.info("workspace of %s moves to another worker", self.inp.task_id)
            await self.prepare()
        return await step(self.ws)

    async def run_tool(self, call: ToolCall, seq: int, agent_type: str | None = None) -> ToolCallResult:
        """Runs one tool call as ``agent_type`` (default the task's; a task that plans before its
        approval runs its calls as ``plan`` until then)."""
        inp = self.inp
        return await self._on_workspace(
            lambda ws: workflow.execute_activity_method(
                WorkspaceActivities.run_tool,
                ToolCallInput(task_id=inp.task_id, run_id=inp.run_id, owner_id=inp.owner_id,
                              agent_type=agent_type or inp.agent_type, workspace=ws, call=call, seq=seq),
                task_queue=ws.task_queue,
                start_to_close_timeout=TOOL_TIMEOUT,
                schedule_to_start_timeout=TOOL_SCHEDULE_TO_START,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=WORKSPACE_RETRY,
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
        )

    async def checkpoint(self) -> None:
        """Saves the workspace's files so a move can restore them; a failure only logs."""
        inp = self.inp
        try:
            cp = await self._on_workspace(
                lambda ws: workflow.execute_activity_method(
                    WorkspaceActivities.checkpoint_workspace,
                    CheckpointInput(task_id=inp.task_id, run_id=inp.run_id, owner_id=inp.owner_id, workspace=ws),
                    task_queue=ws.task_queue,
                    start_to_close_timeout=FINALIZE_TIMEOUT,
                    schedule_to_start_timeout=TOOL_SCHEDULE_TO_START,
                    retry_policy=WORKSPACE_RETRY,
                )
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            workflow.logger.warning("checkpoint of %s failed: %s", inp.task_id, err)
            return
        if cp.checkpoint_id is not None:
            self.checkpoint_id = cp.checkpoint_id

    async def finalize(self, text: str, publish: bool) -> FinalizeResult | None:
        """The run's changes, git results and artifacts; None when there are none to report."""
        inp = self.inp
        if self.ws is None:
            if self.lazy:
                # No tool ever needed the workspace: nothing changed and no outputs were kept.
                return FinalizeResult(changes={"files": [], "additions": 0, "deletions": 0}, git=None, artifacts=[])
            return None
        try:
            return await self._on_workspace(
                lambda ws: workflow.execute_activity_method(
                    WorkspaceActivities.finalize_workspace,
                    FinalizeInput(task_id=inp.task_id, run_id=inp.run_id, owner_id=inp.owner_id,
                                  agent_type=inp.agent_type, codebase_id=inp.codebase_id, workspace=ws,
                                  final_text=text, publish=publish),
                    task_queue=ws.task_queue,
                    start_to_close_timeout=FINALIZE_TIMEOUT,
                    schedule_to_start_timeout=TOOL_SCHEDULE_TO_START,
                    retry_policy=WORKSPACE_RETRY,
                )
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            workflow.logger.warning("finalizing %s failed: %s", inp.task_id, err)
            return None

    async def keep_plan(self, text: str, revision: int) -> KeepPlanResult:
        """Stores the plan written so far as the plan artifact's revision ``revision``."""
        inp = self.inp
        return await self._on_workspace(
            lambda ws: workflow.execute_activity_method(
                WorkspaceActivities.keep_plan,
                KeepPlanInput(task_id=inp.task_id, run_id=inp.run_id, owner_id=inp.owner_id, workspace=ws,
                              final_text=text, revision=revision),
                task_queue=ws.task_queue,
                start_to_close_timeout=FINALIZE_TIMEOUT,
                schedule_to_start_timeout=TOOL_SCHEDULE_TO_START,
                retry_policy=WORKSPACE_RETRY,
            )
        )

    async def cleanup(self) -> None:
        if self.ws is None:
            return
        try:
            await workflow.execute_activity_method(
                WorkspaceActivities.cleanup_workspace,
                CleanupInput(task_id=self.inp.task_id, path=self.ws.path),
                task_queue=self.ws.task_queue,
                start_to_close_timeout=CLEANUP_TIMEOUT,
                schedule_to_start_timeout=TOOL_SCHEDULE_TO_START,
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
        except ActivityError:
            # That worker is gone, and its disk with it (or its start-up sweep removes it).
            pass
