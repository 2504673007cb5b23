"""What one execution of :class:`codetether.tasks.workflow.TaskWorkflow` knows about its run.

The workflow owns one :class:`TaskRunState`; its update handlers, its transition records, the
single-turn path (``codetether/tasks/legacy_turn.py``) and the tool loop (``codetether/agent/loop.py``)
all read and change that one object, which is handed to them explicitly. Plain data: no Temporal
calls happen here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from codetether.agent.contracts import ChatMessage
from codetether.tasks.contracts import VIA_API, RequiredAction, TaskCarryOver, TaskStatus


@dataclass
class TaskRunState:
    status: str
    # The conversation as the single-turn path sends it to the model; the tool loop keeps its
    # transcript in the database instead and leaves this as it found it.
    messages: list[ChatMessage] = field(default_factory=list)
    # Messages sent while the agent was busy, delivered at its next turn.
    pending: list[str] = field(default_factory=list)
    retry_count: int = 0
    # Model turns in this execution (continue-as-new resets it).
    turns: int = 0
    # True once task.started is recorded (carried through continue-as-new).
    started: bool = False
    # The question the run is parked on, and the answer once one arrives (with who sent it how).
    required_action: RequiredAction | None = None
    reply: str | None = None
    reply_origin: tuple[str, str | None] = (VIA_API, None)
    # The structured parts of the latest answer (CONTRACT §12): its decision (approve or reject),
    # its choice, and the person's own words; kept until the next question.
    reply_decision: str | None = None
    reply_choice: str | None = None
    reply_message: str | None = None
    reply_answer: Any = None
    # True for executions that record by local activity (LEAN_TASK_PATCH).
    lean: bool = False
    # True for executions that run the tool loop (AGENT_LOOP_PATCH, or lean).
    agent: bool = False

    @classmethod
    def carried_over(cls, carried: TaskCarryOver | None) -> TaskRunState:
        """The state an execution starts with: fresh, or where the previous execution left off."""
        carried = carried or TaskCarryOver()
        return cls(
            status=TaskStatus.RUNNING.value if carried.started else TaskStatus.QUEUED.value,
            messages=list(carried.messages),
            pending=list(carried.pending_messages),
            retry_count=carried.retry_count,
            turns=carried.turns,
            started=carried.started,
        )

    def take_pending(self) -> list[str]:
        """The queued messages, in order; the queue is empty afterwards."""
        taken = list(self.pending)
        self.pending.clear()
        return taken

    def count_attempts(self, attempt: int) -> None:
        """Adds the retries of an activity that succeeded (or failed for good) on ``attempt``."""
        self.retry_count += max(0, attempt - 1)
