"""Anthropic messages API through the official ``anthropic`` SDK, streaming, with ``ask_user``.

SDK retries are off: Temporal's RetryPolicy on the activity owns retries.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx

from codetether.agent.backends.base import (
    Completion,
    Finish,
    classify_error,
    repair_transcript,
    retry_after_seconds,
    ASK_USER_DESCRIPTION,
    ASK_USER_PARAMETERS,
    ASK_USER_TOOL,
    ProgressFn,
    ProviderError,
)
from codetether.agent.backends.chat import ChatBackend
from codetether.agent.tools import Tool, definition
from codetether.agent.catalog import ModelSpec
from codetether.agent.contracts import ChatMessage, ToolCall

# Output limit when the models file names none for a model: every current Claude model allows it.
DEFAULT_MAX_TOKENS = 8192
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

    for m in repair_transcript([m for m in messages if m.role != "system"]):
        if m.role == "tool":
            push("user", [{"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content or "(empty)"}])
        elif m.role == "assistant":
            # Signed thinking blocks go back first and unchanged (required with tool use).
            blocks: list[dict[str, Any]] = list((m.provider_data or {}).get("thinking") or [])
            if m.content.strip():
                blocks.append({"type": "text", "text": m.content})
            for c in m.tool_calls:
                blocks.append({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments})
            if blocks:
                push("assistant", blocks)
        elif m.content.strip():
            # An empty text block is refused (400); an empty user message carries nothing.
            push("user", [{"type": "text", "text": m.content}])
    return system, out


class AnthropicBackend(ChatBackend):
    LEGACY_TOOLS = TOOLS

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

    def _offer(self, tools: list[Tool]) -> list[dict[str, Any]]:
        return [{"name": d["name"], "description": d["description"], "input_schema": d["parameters"]}
                for d in map(definition, tools)]

    async def _call(self, client, spec: ModelSpec, convo: list[ChatMessage], progress: ProgressFn,
                    tools: list[dict[str, Any]]) -> Completion:
        system, msgs = to_anthropic(convo)
        kwargs: dict[str, Any] = {"model": spec.provider_model, "max_tokens": spec.max_output_tokens or DEFAULT_MAX_TOKENS,
                                  "messages": msgs}
        if tools:
            kwargs["tools"] = tools
        if system:
            kwargs["system"] = system
        try:
            if not spec.stream:
                return _from_message((await client.messages.create(**kwargs)).model_dump())
            raw = await client.messages.with_raw_response.create(**kwargs, stream=True)
            if "text/event-stream" not in raw.headers.get("content-type", ""):
                # A proxy that answers a streaming request with the whole message.
                return _from_message(json.loads(await raw.http_response.aread() or b"{}"))
            acc = _EventAccumulator()
            async for event in await raw.parse():
                await acc.add(event.model_dump(), progress)
            return acc.completion()
        except anthropic.APIStatusError as err:
            raise _status_error(err) from None
        except (anthropic.APIConnectionError, anthropic.APITimeoutError, httpx.HTTPError) as err:
            raise ProviderError(f"anthropic unreachable: {err}", retryable=True) from None
        except json.JSONDecodeError as err:
            raise ProviderError(f"anthropic answered something that is not JSON: {err}", retryable=True) from None


class _EventAccumulator:
    """Builds one completion from the messages stream's events (message_start, content blocks
    and their deltas, message_delta with the stop reason and the output usage)."""

    def __init__(self) -> None:
        self.message: dict[str, Any] = {"content": [], "usage": {}}
        self.blocks: dict[int, dict[str, Any]] = {}
        self.json_parts: dict[int, list[str]] = {}

    async def add(self, event: dict[str, Any], progress: ProgressFn) -> None:
        kind = event.get("type")
        if kind == "message_start":
            start = event.get("message") or {}
            self.message["usage"] = dict(start.get("usage") or {})
        elif kind == "content_block_start":
            self.blocks[event["index"]] = dict(event.get("content_block") or {})
        elif kind == "content_block_delta":
            block = self.blocks.setdefault(event["index"], {"type": "text", "text": ""})
            delta = event.get("delta") or {}
            dtype = delta.get("type")
            if dtype == "text_delta":
                block["text"] = (block.get("text") or "") + delta.get("text", "")
                await progress(block["text"][-200:], None)
            elif dtype == "input_json_delta":
                self.json_parts.setdefault(event["index"], []).append(delta.get("partial_json", ""))
            elif dtype == "thinking_delta":
                block["thinking"] = (block.get("thinking") or "") + delta.get("thinking", "")
            elif dtype == "signature_delta":
                block["signature"] = (block.get("signature") or "") + delta.get("signature", "")
        elif kind == "message_delta":
            delta = event.get("delta") or {}
            if delta.get("stop_reason"):
                self.message["stop_reason"] = delta["stop_reason"]
            self.message["usage"].update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
        elif kind == "error":
            error = event.get("error") or {}
            raise _event_error(error)

    def completion(self) -> Completion:
        content = []
        for index in sorted(self.blocks):
            block = self.blocks[index]
            if block.get("type") == "tool_use":
                text = "".join(self.json_parts.get(index, []))
                try:
                    block["input"] = json.loads(text) if text else (block.get("input") or {})
                except json.JSONDecodeError:
                    block["input"] = None  # cut mid-arguments
            content.append(block)
        self.message["content"] = content
        return _from_message(self.message)


def _from_message(message: dict[str, Any]) -> Completion:
    if message.get("type") == "error":
        raise _event_error(message.get("error") or {})
    stop = message.get("stop_reason")
    cut = stop == "max_tokens"
    text_parts: list[str] = []
    calls: list[ToolCall] = []
    cut_calls: list[str] = []
    thinking: list[dict[str, Any]] = []
    tool_blocks = [b for b in message.get("content") or [] if b.get("type") == "tool_use"]
    for block in message.get("content") or []:
        btype = block.get("type")
        if btype == "text":
            text_parts.append(block.get("text") or "")
        elif btype in ("thinking", "redacted_thinking"):
            thinking.append({k: v for k, v in block.items() if k in ("type", "thinking", "signature", "data")})
        elif btype == "tool_use":
            args = block.get("input")
            if not isinstance(args, dict) or (cut and block is tool_blocks[-1]):
                cut_calls.append(block.get("name") or "unknown")
                cut = True
                continue
            calls.append(ToolCall(id=block.get("id") or "", name=block.get("name") or "", arguments=args))
    usage = message.get("usage") or {}
    return Completion(
        text="".join(text_parts),
        tool_calls=calls,
        input_tokens=int(usage.get("input_tokens") or 0) + int(usage.get("cache_read_input_tokens") or 0)
        + int(usage.get("cache_creation_input_tokens") or 0),
        output_tokens=int(usage.get("output_tokens") or 0),
        cached_input_tokens=int(usage.get("cache_read_input_tokens") or 0),
        finish={"end_turn": Finish.STOP, "stop_sequence": Finish.STOP, "tool_use": Finish.TOOL_CALLS,
                "max_tokens": Finish.LENGTH, "refusal": Finish.CONTENT_FILTER}.get(stop or "", Finish.STOP),
        truncated=cut,
        cut_tool_calls=cut_calls,
        provider_data={"thinking": thinking} if thinking else None,
    )


def _event_error(error: dict[str, Any]) -> ProviderError:
    message = str(error.get("message") or error.get("type") or "stream error")
    retryable, code = classify_error(200, kind=error.get("type"), message=message)
    return ProviderError(f"anthropic stream failed: {message}", retryable=retryable, code=code)


def _status_error(err: anthropic.APIStatusError) -> ProviderError:
    body = err.body if isinstance(err.body, dict) else {}
    inner = body.get("error", body) if isinstance(body, dict) else {}
    inner = inner if isinstance(inner, dict) else {}
    message = str(inner.get("message") or err.message)
    retryable, code = classify_error(err.status_code, kind=inner.get("type"), message=message)
    return ProviderError(
        f"anthropic answered {err.status_code}: {message}",
        status=err.status_code,
        retryable=retryable,
        retry_after=retry_after_seconds(err.response.headers) if retryable else None,
        code=code,
    )
