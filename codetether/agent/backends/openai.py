"""OpenAI-compatible chat completions (OpenAI, OpenRouter, Gemini's and xAI's endpoints, vLLM,
Ollama) through the official ``openai`` SDK, streaming, with the ``ask_user`` tool.

SDK retries are off: Temporal's RetryPolicy on the activity owns retries.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai

from codetether.agent.backends.base import (
    Completion,
    estimate_tokens,
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

TOOLS = [
    {
        "type": "function",
        "function": {"name": ASK_USER_TOOL, "description": ASK_USER_DESCRIPTION, "parameters": ASK_USER_PARAMETERS},
    }
]


def to_openai(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "tool":
            out.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content})
        elif m.role == "assistant" and m.tool_calls:
            out.append(
                {
                    "role": "assistant",
                    "content": m.content or None,
                    "tool_calls": [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                        }
                        for c in m.tool_calls
                    ],
                }
            )
        else:
            out.append({"role": m.role, "content": m.content})
    return out


class OpenAIBackend:
    def __init__(self, http_client: httpx.AsyncClient | None = None, **_deps) -> None:
        # The worker shares one HTTP client; without one the backend owns its own, so the SDK client
        # is built the same way either way (and no SDK-version-specific timeout type is passed).
        self._http = http_client or httpx.AsyncClient(follow_redirects=False, timeout=httpx.Timeout(600.0, connect=10.0))
        self._clients: dict[tuple[str | None, str | None], openai.AsyncOpenAI] = {}

    def _client(self, spec: ModelSpec) -> openai.AsyncOpenAI:
        key = (spec.base_url, spec.api_key)
        if key not in self._clients:
            self._clients[key] = openai.AsyncOpenAI(
                api_key=spec.api_key or "not-needed",
                base_url=spec.base_url,
                max_retries=0,
                # A plain number: every SDK major accepts it (openai 3 refuses httpx's Timeout).
                timeout=600.0,
                http_client=self._http,
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
                    # Other calls in the same message get no answer; the model sees only ask_user's.
                    assistant.tool_calls = [call]
                    await progress("waiting for an answer", None)
                    return TurnOutcome(new_messages=new, text=text, question=question, tool_call_id=call.id)
                await progress(f"tool {call.name} is not available", None)
                reply = ChatMessage(role="tool", content=f"error: no tool named {call.name}", tool_call_id=call.id)
                new.append(reply)
                convo.append(reply)
        raise ProviderError("the model kept calling tools without answering", retryable=False)

    async def complete(self, spec: ModelSpec, messages: list[ChatMessage], tools: list[str], progress: ProgressFn) -> Completion:
        """One call of the agent loop with the given tools offered (CONTRACT §6 names)."""
        offered = [
            {"type": "function", "function": {"name": n, "description": TOOL_SPECS[n]["description"], "parameters": TOOL_SPECS[n]["parameters"]}}
            for n in tools
        ]
        usage: dict[str, int] = {}
        text, calls = await self._complete(self._client(spec), spec, list(messages), progress, tools=offered, usage=usage)
        sent = sum(len(m.content) for m in messages)
        return Completion(
            text=text,
            tool_calls=calls,
            input_tokens=usage.get("input", estimate_tokens("x" * sent)),
            output_tokens=usage.get("output", estimate_tokens(text + "".join(json.dumps(c.arguments) for c in calls))),
        )

    async def _complete(self, client, spec, convo, progress, *, tools=None, usage=None) -> tuple[str, list[ToolCall]]:
        parts: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        try:
            stream = await client.chat.completions.create(
                model=spec.provider_model, messages=to_openai(convo), tools=tools if tools is not None else TOOLS, stream=True
            )
            async for chunk in stream:
                if usage is not None and getattr(chunk, "usage", None) is not None:
                    usage["input"] = chunk.usage.prompt_tokens or 0
                    usage["output"] = chunk.usage.completion_tokens or 0
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta
                if delta is None:
                    continue
                if delta.content:
                    parts.append(delta.content)
                    await progress("".join(parts)[-200:], None)
                for tc in delta.tool_calls or []:
                    slot = calls.setdefault(tc.index or 0, {"id": "", "name": "", "arguments": ""})
                    if tc.id:
                        slot["id"] = tc.id
                    if tc.function is not None:
                        if tc.function.name:
                            slot["name"] += tc.function.name
                        if tc.function.arguments:
                            slot["arguments"] += tc.function.arguments
        except openai.APIStatusError as err:
            raise ProviderError(
                f"{spec.provider} answered {err.status_code}: {_message(err)}",
                status=err.status_code,
                retryable=classify_status(err.status_code),
            ) from None
        except (openai.APIConnectionError, openai.APITimeoutError, httpx.HTTPError) as err:
            raise ProviderError(f"{spec.provider} unreachable: {err}", retryable=True) from None
        tool_calls = []
        for index in sorted(calls):
            c = calls[index]
            try:
                args = json.loads(c["arguments"] or "{}")
            except json.JSONDecodeError:
                args = {"question": c["arguments"]}
            tool_calls.append(ToolCall(id=c["id"] or f"call_{index}", name=c["name"], arguments=args if isinstance(args, dict) else {}))
        return "".join(parts), tool_calls


def _message(err: openai.APIStatusError) -> str:
    body = err.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return err.message
