"""What the agent's tool loop (``codetether/agent/loop.py``) needs from the workflow that runs it.

:class:`codetether.tasks.workflow.TaskWorkflow` is that host: it parks the task for a person's
answer, takes it back to running afterwards, and writes the record that ends the run. The loop
reaches the task's run state (:class:`codetether.tasks.run_state.TaskRunState`) directly and
the workflow only through these methods.
"""

from __future__ import annotations

from typing import Protocol

from codetether.tasks.contracts import TaskChanges


class AgentHost(Protocol):
    async def ask(
        self,
        question: str,
        *,
        kind: str = "question",
        options: list[str] | None = None,
        answer_schema: dict | None = None,
        artifact: dict | None = None,
    ) -> str | None:
        """Parks the task in needs_input (a ``required_action`` of ``kind``, CONTRACT §12) until
        a reply arrives; the reply's text, or None when the input timeout passed first. The
        reply's decision and choice are then in the run state."""
        ...

    async def resume_after_answer(self) -> None:
        """After a reply: waits for a running slot again if the task has a limit, then shows it
        running."""
        ...

    async def end_run(self, event_type: str, changes: TaskChanges) -> None:
        """Records the run's end (completed, failed, cancelled) and frees its running slot."""
        ...
