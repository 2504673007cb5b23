"""The agent backend interface, the ``ask_user`` tool and provider error classification."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from core.catalog import ModelSpec
from workflows.types import ChatMessage, ToolCall

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


class AgentBackend(Protocol):
    async def run_turn(self, spec: ModelSpec, messages: list[ChatMessage], progress: ProgressFn) -> TurnOutcome: ...


def ask_user_call(call: ToolCall) -> str | None:
    if call.name != ASK_USER_TOOL:
        return None
    q = call.arguments.get("question")
    return str(q) if q else "Could you give me more details?"


def backend_for(kind: str, **deps) -> AgentBackend:
    if kind == "demo":
        from activities.backends.demo import DemoBackend

        return DemoBackend(**deps)
    if kind == "anthropic":
        from activities.backends.anthropic import AnthropicBackend

        return AnthropicBackend(**deps)
    if kind == "openai":
        from activities.backends.openai import OpenAIBackend

        return OpenAIBackend(**deps)
    raise ProviderError(f"unknown backend kind {kind!r}", retryable=False)
