"""Anthropic messages API through the official ``anthropic`` SDK, streaming, with ``ask_user``.

SDK retries are off: Temporal's RetryPolicy on the activity owns retries.
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx

from codetether.agent.backends.base import (
    Completion,
    ASK_USER_DESCRIPTION,
    ASK_USER_PARAMETERS,
    ASK_USER_TOOL,
    MAX_TOOL_STEPS,
    ProgressFn,
    ProviderError,
    TurnOutcome,
    ask_user_call,
    classify_status,
)
from codetether.agent.tools import TOOL_SPECS
from codetether.agent.catalog import ModelSpec
from codetether.agent.contracts import ChatMessage, ToolCall

MAX_TOKENS = 8192
TOOLS = [{"name": ASK_USER_TOOL, "description": ASK_USER_DESCRIPTION, "input_schema": ASK_USER_PARAMETERS}]


def to_anthropic(messages: list[ChatMessage]) -> tuple[str, list[dict[str, Any]]]:
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    out: list[dict[str, Any]] = []

    def push(role: str, blocks: list[dict[str, Any]]) -> None:
        # Anthropic wants alternating roles; merge consecutive messages of one role.
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for m in messages:
        if m.role == "system":
            continue
        if m.role == "tool":
            push("user", [{"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content}])
        elif m.role == "assistant":
            blocks: list[dict[str, Any]] = []
            if m.content:
                blocks.append({"type": "text", "text": m.content})
            for c in m.tool_calls:
                blocks.append({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments})
            push("assistant", blocks or [{"type": "text", "text": ""}])
        else:
            push("user", [{"type": "text", "text": m.content}])
    return system, out


class AnthropicBackend:
    def __init__(self, **_deps) -> None:
        # The worker's shared httpx client is not passed on: this SDK generation ships its own
        # HTTP package (httpx2) and refuses an ``httpx.AsyncClient``, so it keeps its own pool.
        self._clients: dict[tuple[str | None, str | None], anthropic.AsyncAnthropic] = {}

    def _client(self, spec: ModelSpec) -> anthropic.AsyncAnthropic:
        key = (spec.base_url, spec.api_key)
        if key not in self._clients:
            self._clients[key] = anthropic.AsyncAnthropic(
                api_key=spec.api_key,
                base_url=spec.base_url,
                max_retries=0,
                timeout=600.0,
            )
        return self._clients[key]

    async def run_turn(self, spec: ModelSpec, messages: list[ChatMessage], progress: ProgressFn) -> TurnOutcome:
        client = self._client(spec)
        convo = list(messages)
        new: list[ChatMessage] = []
        for _ in range(MAX_TOOL_STEPS):
            text, calls = await self._complete(client, spec, convo, progress)
            assistant = ChatMessage(role="assistant", content=text, tool_calls=calls)
            new.append(assistant)
            convo.append(assistant)
            if not calls:
                return TurnOutcome(new_messages=new, text=text)
            for call in calls:
                question = ask_user_call(call)
                if question is not None:
                    assistant.tool_calls = [call]
                    await progress("waiting for an answer", None)
                    return TurnOutcome(new_messages=new, text=text, question=question, tool_call_id=call.id)
                reply = ChatMessage(role="tool", content=f"error: no tool named {call.name}", tool_call_id=call.id)
                new.append(reply)
                convo.append(reply)
        raise ProviderError("the model kept calling tools without answering", retryable=False)

    async def complete(self, spec: ModelSpec, messages: list[ChatMessage], tools: list[str], progress: ProgressFn) -> Completion:
        """One call of the agent loop with the given tools offered (CONTRACT §6 names)."""
        offered = [
            {"name": n, "description": TOOL_SPECS[n]["description"], "input_schema": TOOL_SPECS[n]["parameters"]} for n in tools
        ]
        usage: dict[str, int] = {}
        text, calls = await self._complete(self._client(spec), spec, list(messages), progress, tools=offered, usage=usage)
        return Completion(text=text, tool_calls=calls, input_tokens=usage.get("input", 0), output_tokens=usage.get("output", 0))

    async def _complete(self, client, spec, convo, progress, *, tools=None, usage=None) -> tuple[str, list[ToolCall]]:
        system, msgs = to_anthropic(convo)
        parts: list[str] = []
        try:
            kwargs: dict[str, Any] = {"model": spec.provider_model, "max_tokens": MAX_TOKENS, "messages": msgs,
                                      "tools": tools if tools is not None else TOOLS}
            if system:
                kwargs["system"] = system
            async with client.messages.stream(**kwargs) as stream:
                async for text in stream.text_stream:
                    parts.append(text)
                    await progress("".join(parts)[-200:], None)
                final = await stream.get_final_message()
        except anthropic.APIStatusError as err:
            raise ProviderError(
                f"anthropic answered {err.status_code}: {err.message}",
                status=err.status_code,
                retryable=classify_status(err.status_code),
            ) from None
        except (anthropic.APIConnectionError, anthropic.APITimeoutError, httpx.HTTPError) as err:
            raise ProviderError(f"anthropic unreachable: {err}", retryable=True) from None
        if usage is not None and getattr(final, "usage", None) is not None:
            usage["input"] = int(getattr(final.usage, "input_tokens", 0) or 0)
            usage["output"] = int(getattr(final.usage, "output_tokens", 0) or 0)
        text = "".join(b.text for b in final.content if getattr(b, "type", "") == "text")
        calls = [
            ToolCall(id=b.id, name=b.name, arguments=dict(b.input) if isinstance(b.input, dict) else {})
            for b in final.content
            if getattr(b, "type", "") == "tool_use"
        ]
        return text, calls
