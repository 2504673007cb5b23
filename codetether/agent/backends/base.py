"""The agent backend interface, the ``ask_user`` tool and provider error classification.

The factory that picks a backend by kind is :mod:`codetether.agent.backends.factory` (the backends
import this module, so it imports none of them).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

from codetether.agent.catalog import ModelSpec
from codetether.agent.contracts import AgentErrorCode, ChatMessage, ToolCall
from codetether.agent.tools import Tool

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
    """A provider refused or failed a request. ``retryable`` decides whether Temporal retries;
    ``retry_after`` (seconds) is how long the provider asked to wait; ``code`` a stable task error
    code for answers that can never succeed (None: decided by ``retryable``)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool,
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.code = code


def classify_status(status: int | None) -> bool:
    """True when an HTTP status from a provider is worth retrying."""
    if status is None:
        return True
    return status in (408, 409, 425, 429) or status >= 500


# Phrases of provider answers that no retry can fix, by the stable code the task fails with.
# Matched against the provider's error code, type and message (OpenAI, Anthropic, Gemini,
# OpenRouter, Groq, xAI and vLLM word them differently).
_NEVER_SUCCEEDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (AgentErrorCode.CONTEXT_LENGTH, ("context_length_exceeded", "maximum context length", "prompt is too long",
                                      "context window", "too many tokens", "input is too long")),
    (AgentErrorCode.QUOTA, ("insufficient_quota", "exceeded your current quota", "quota exceeded", "spend limit",
                            "billing", "credit balance is too low", "insufficient credits")),
    (AgentErrorCode.REQUEST_TOO_LARGE, ("request too large", "request_too_large", "too large for model")),
)
# Anthropic's error types that mean "try again later", whatever HTTP status carried them (a
# stream's error event arrives inside a 200).
_TRANSIENT_TYPES = ("overloaded_error", "rate_limit_error", "api_error", "timeout_error", "server_error",
                    # Groq: the model produced a tool call that failed validation; it may not again.
                    "tool_use_failed")


def classify_error(status: int | None, *, code: object = None, kind: object = None, message: str = "") -> tuple[bool, str | None]:
    """(retryable, stable code or None) for one provider error."""
    text = f"{code or ''} {kind or ''} {message}".lower()
    for stable, phrases in _NEVER_SUCCEEDS:
        if any(p in text for p in phrases):
            return False, stable
    if status == 413:
        return False, AgentErrorCode.REQUEST_TOO_LARGE
    if isinstance(code, int) and 400 <= code < 600:
        # OpenRouter's error chunks carry the upstream HTTP status as their code.
        return classify_status(code), None
    if str(kind or "") in _TRANSIENT_TYPES or str(code or "") in _TRANSIENT_TYPES:
        return True, None
    if status == 200 or status is None:
        # An error inside a successful stream with nothing that says "never": the stream broke.
        return (str(kind or "") not in ("invalid_request_error", "authentication_error", "permission_error",
                                        "not_found_error")), None
    return classify_status(status), None


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The wait a provider asked for: ``retry-after-ms``, ``retry-after`` in seconds or as an HTTP
    date; None when it asked for nothing."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class Finish:
    """Why a model stopped, normalised across providers."""

    STOP = "stop"
    TOOL_CALLS = "tool_calls"
    LENGTH = "length"  # the output limit cut the answer (or a tool call's arguments)
    CONTENT_FILTER = "content_filter"


@dataclass
class Completion:
    """One model call of the agent loop: text and/or tool calls, and the tokens it cost.

    ``truncated`` is set when the output limit cut the answer; a cut tool call is never in
    ``tool_calls`` (its arguments are incomplete), it is named in ``cut_tool_calls``."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    finish: str = Finish.STOP
    truncated: bool = False
    cut_tool_calls: list[str] = field(default_factory=list)
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    # False when the provider reported no usage and the counts are estimates.
    usage_exact: bool = True
    provider_data: dict[str, Any] | None = None


class AgentBackend(Protocol):
    async def run_turn(self, spec: ModelSpec, messages: list[ChatMessage], progress: ProgressFn) -> TurnOutcome: ...

    async def complete(
        self, spec: ModelSpec, messages: list[ChatMessage], tools: list[Tool], progress: ProgressFn
    ) -> Completion: ...


def estimate_tokens(text: str) -> int:
    """A rough count for providers that do not report usage (about four characters a token)."""
    return max(1, len(text) // 4) if text else 0


def ask_user_call(call: ToolCall) -> str | None:
    if call.name != ASK_USER_TOOL:
        return None
    q = call.arguments.get("question")
    return str(q) if q else "Could you give me more details?"


_THINK = re.compile(r"^\s*<think>(.*?)</think>\s*", re.S)


def split_reasoning(text: str) -> tuple[str, str]:
    """(answer, reasoning): a leading ``<think>…</think>`` block some models (MiniMax, DeepSeek
    and Qwen on OpenAI-compatible servers) put inside ``content`` is reasoning, not the answer."""
    m = _THINK.match(text)
    if not m:
        return text, ""
    return text[m.end():], m.group(1).strip()


def repair_transcript(messages: list[ChatMessage]) -> list[ChatMessage]:
    """A transcript every provider accepts: each tool call answered before the next message (a
    question that timed out, a run cancelled between a call and its result), no empty assistant
    message. The stored transcript is left as it is; only what is sent is repaired."""
    out: list[ChatMessage] = []
    open_calls: list[str] = []

    def close_open() -> None:
        for call_id in open_calls:
            out.append(ChatMessage(role="tool", tool_call_id=call_id,
                                   content="No result: this call was not answered before the conversation moved on."))
        open_calls.clear()

    for m in messages:
        if m.role == "tool":
            if m.tool_call_id in open_calls:
                open_calls.remove(m.tool_call_id)
                out.append(m)
            # A result whose call is not in the transcript would be refused: drop it.
            continue
        close_open()
        if m.role == "assistant" and not m.content.strip() and not m.tool_calls:
            continue
        out.append(m)
        if m.role == "assistant":
            open_calls.extend(c.id for c in m.tool_calls)
    if open_calls and out and out[-1].role != "assistant":
        close_open()
    elif open_calls:
        # The transcript ends on calls still to be answered: that is the caller's next step.
        pass
    return out
