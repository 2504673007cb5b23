"""The agent backend interface, the ``ask_user`` tool and provider error classification.

The factory that picks a backend by kind is :mod:`codetether.agent.backends.factory` (the backends
import this module, so it imports none of them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from codetether.agent.catalog import ModelSpec
from codetether.agent.contracts import ChatMessage, ToolCall

ASK_USER_TOOL = "ask_user"
ASK_USER_DESCRIPTION = (
    "Ask the person who submitted this task a question and wait for their answer. Use it only when "
    "you cannot finish without information they have."
)
ASK_USER_PARAMETERS = {
    "type": "object",
    "properties": {"question": {"type": "string", "description": "The question to ask, in one or two sentences."}},
    "required": ["question"],
    "additionalProperties": False,
}
# Guard against a model that keeps calling tools we do not offer.
MAX_TOOL_STEPS = 8

ProgressFn = Callable[[str, int | None], Awaitable[None]]
"""Called with a short progress message and an optional percentage."""


@dataclass
class TurnOutcome:
    """What one agent turn produced: messages to append, and either a final text or a question."""

    new_messages: list[ChatMessage]
    text: str = ""
    question: str | None = None
    tool_call_id: str | None = None


class ProviderError(Exception):
    """A provider refused or failed a request. ``retryable`` decides whether Temporal retries."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


def classify_status(status: int | None) -> bool:
    """True when an HTTP status from a provider is worth retrying."""
    if status is None:
        return True
    return status in (408, 409, 425, 429) or status >= 500


@dataclass
class Completion:
    """One model call of the agent loop: text and/or tool calls, and the tokens it cost."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0


class AgentBackend(Protocol):
    async def run_turn(self, spec: ModelSpec, messages: list[ChatMessage], progress: ProgressFn) -> TurnOutcome: ...

    async def complete(
        self, spec: ModelSpec, messages: list[ChatMessage], tools: list[str], progress: ProgressFn
    ) -> Completion: ...


def estimate_tokens(text: str) -> int:
    """A rough count for providers that do not report usage (about four characters a token)."""
    return max(1, len(text) // 4) if text else 0


def ask_user_call(call: ToolCall) -> str | None:
    if call.name != ASK_USER_TOOL:
        return None
    q = call.arguments.get("question")
    return str(q) if q else "Could you give me more details?"
