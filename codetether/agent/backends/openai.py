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
    Finish,
    classify_error,
    estimate_tokens,
    repair_transcript,
    retry_after_seconds,
    split_reasoning,
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

TOOLS = [
    {
        "type": "function",
        "function": {"name": ASK_USER_TOOL, "description": ASK_USER_DESCRIPTION, "parameters": ASK_USER_PARAMETERS},
    }
]


def to_openai(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in repair_transcript(messages):
        if m.role == "tool":
            out.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content})
        elif m.role == "assistant" and m.tool_calls:
            signatures = (m.provider_data or {}).get("thought_signatures", {})
            calls = []
            for c in m.tool_calls:
                call: dict[str, Any] = {"id": c.id, "type": "function",
                                        "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                if c.id in signatures:
                    # Gemini 3 refuses a tool turn whose calls lost their thought signature.
                    call["extra_content"] = {"google": {"thought_signature": signatures[c.id]}}
                calls.append(call)
            out.append({"role": "assistant", "content": m.content or None, "tool_calls": calls})
        else:
            out.append({"role": m.role, "content": m.content})
    return out


class OpenAIBackend(ChatBackend):
    LEGACY_TOOLS = TOOLS

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

    def _offer(self, tools: list[Tool]) -> list[dict[str, Any]]:
        return [{"type": "function", "function": definition(t)} for t in tools]

    async def _call(self, client, spec: ModelSpec, convo: list[ChatMessage], progress: ProgressFn,
                    tools: list[dict[str, Any]]) -> Completion:
        kwargs: dict[str, Any] = {"model": spec.provider_model, "messages": to_openai(convo)}
        if tools:
            # An empty list is refused; a call without tools (compaction's summary) sends none.
            kwargs["tools"] = tools
        try:
            if not spec.stream:
                return _from_json(spec, (await client.chat.completions.create(**kwargs)).model_dump(), convo)
            try:
                raw = await client.chat.completions.with_raw_response.create(
                    **kwargs, stream=True, stream_options={"include_usage": True}
                )
            except openai.APIStatusError as err:
                if not _streaming_refused(err):
                    raise
                # OpenAI streams some models (o-series) only to verified organisations: ask again
                # without streaming rather than fail a task that can be answered.
                return _from_json(spec, (await client.chat.completions.create(**kwargs)).model_dump(), convo)
            if "text/event-stream" not in raw.headers.get("content-type", ""):
                # Some servers answer a streaming request with one JSON document.
                body = await raw.http_response.aread()
                return _from_json(spec, json.loads(body or b"{}"), convo)
            acc = _StreamAccumulator()
            async for chunk in raw.parse():
                await acc.add(chunk.model_dump(), progress)
            return acc.completion(spec, convo)
        except openai.APIStatusError as err:
            raise _status_error(spec, err) from None
        except openai.APIError as err:
            # An error event inside a 200 stream (OpenRouter, Groq): its body says what it was.
            raise _stream_error(spec, err.body, err.message) from None
        except (openai.APIConnectionError, openai.APITimeoutError, httpx.HTTPError) as err:
            raise ProviderError(f"{spec.provider} unreachable: {err}", retryable=True) from None
        except json.JSONDecodeError as err:
            raise ProviderError(f"{spec.provider} answered something that is not JSON: {err}", retryable=True) from None


class _StreamAccumulator:
    """Builds one completion from chat-completion chunks, tolerant of the servers that number
    parallel tool calls loosely (Gemini omits or repeats ``index``: a call with a new id starts
    a new call) and of error chunks inside the stream (OpenRouter)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.reasoning: list[str] = []
        self.calls: list[dict[str, Any]] = []
        self.by_index: dict[int, dict[str, Any]] = {}
        self.finish: str | None = None
        self.usage: dict[str, Any] | None = None

    async def add(self, chunk: dict[str, Any], progress: ProgressFn) -> None:
        if chunk.get("error"):
            error = chunk["error"]
            raise openai.APIError(str(error.get("message") if isinstance(error, dict) else error),
                                  httpx.Request("POST", "https://provider.invalid/"), body=error)
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
            if delta.get("content"):
                self.parts.append(delta["content"])
                await progress("".join(self.parts)[-200:], None)
            for key in ("reasoning_content", "reasoning"):
                if isinstance(delta.get(key), str):
                    self.reasoning.append(delta[key])
            for tc in delta.get("tool_calls") or []:
                self._add_call(tc)

    def _add_call(self, tc: dict[str, Any]) -> None:
        index = tc.get("index")
        call_id = tc.get("id") or ""
        slot = self.by_index.get(index) if index is not None else (self.calls[-1] if self.calls else None)
        if slot is None or (call_id and slot["id"] and call_id != slot["id"]):
            slot = {"id": call_id, "name": "", "arguments": "", "extra": None}
            self.calls.append(slot)
            if index is not None:
                self.by_index[index] = slot
        if call_id:
            slot["id"] = call_id
        fn = tc.get("function") or {}
        if fn.get("name"):
            # A name arrives whole; a second one on the same slot is a call the server merged.
            slot["name"] = fn["name"] if not slot["name"] else slot["name"]
        if fn.get("arguments"):
            slot["arguments"] += fn["arguments"]
        extra = tc.get("extra_content")
        if extra:
            slot["extra"] = extra

    def completion(self, spec: ModelSpec, convo: list[ChatMessage]) -> Completion:
        return _completion(spec, convo, "".join(self.parts), self.calls, self.finish, self.usage,
                           "".join(self.reasoning))


def _from_json(spec: ModelSpec, data: dict[str, Any], convo: list[ChatMessage]) -> Completion:
    if data.get("error"):
        raise _stream_error(spec, data["error"], str(data["error"]))
    choice = (data.get("choices") or [{}])[0]
    msg = choice.get("message") or {}
    calls = []
    message_extra = msg.get("extra_content")
    for tc in msg.get("tool_calls") or []:
        fn = tc.get("function") or {}
        calls.append({"id": tc.get("id") or "", "name": fn.get("name") or "", "arguments": fn.get("arguments") or "",
                      "extra": tc.get("extra_content") or message_extra})
    reasoning = msg.get("reasoning_content") or msg.get("reasoning") or ""
    return _completion(spec, convo, msg.get("content") or "", calls, choice.get("finish_reason"), data.get("usage"),
                       reasoning if isinstance(reasoning, str) else "")


def _completion(spec: ModelSpec, convo: list[ChatMessage], text: str, raw_calls: list[dict[str, Any]],
                finish: str | None, usage: dict[str, Any] | None, reasoning: str) -> Completion:
    text, thought = split_reasoning(text)
    cut = finish == Finish.LENGTH
    calls: list[ToolCall] = []
    cut_calls: list[str] = []
    signatures: dict[str, str] = {}
    for i, c in enumerate(raw_calls):
        try:
            args = json.loads(c["arguments"] or "{}")
        except json.JSONDecodeError:
            args = None
        if args is None or not isinstance(args, dict) or (cut and i == len(raw_calls) - 1):
            # Arguments cut mid-way (or the last call of an answer cut at the limit): never run it.
            cut_calls.append(c["name"] or "unknown")
            cut = True
            continue
        call = ToolCall(id=c["id"] or f"call_{i}", name=c["name"], arguments=args)
        sig = ((c.get("extra") or {}).get("google") or {}).get("thought_signature")
        if sig:
            signatures[call.id] = sig
        calls.append(call)
    done = Completion(
        text=text,
        tool_calls=calls,
        finish=finish or (Finish.TOOL_CALLS if calls else Finish.STOP),
        truncated=cut,
        cut_tool_calls=cut_calls,
        provider_data={"thought_signatures": signatures} if signatures else None,
    )
    if usage:
        details = usage.get("prompt_tokens_details") or {}
        out_details = usage.get("completion_tokens_details") or {}
        done.input_tokens = int(usage.get("prompt_tokens") or 0)
        done.output_tokens = int(usage.get("completion_tokens") or 0)
        done.cached_input_tokens = int(details.get("cached_tokens") or 0)
        done.reasoning_tokens = int(out_details.get("reasoning_tokens") or 0)
    else:
        sent = sum(len(m.content) for m in convo)
        done.input_tokens = estimate_tokens("x" * sent)
        done.output_tokens = estimate_tokens(text + thought + reasoning + "".join(c["arguments"] for c in raw_calls))
        done.usage_exact = False
    return done


def _streaming_refused(err: openai.APIStatusError) -> bool:
    if err.status_code != 400:
        return False
    body = err.body if isinstance(err.body, dict) else {}
    inner = body.get("error", body) if isinstance(body, dict) else {}
    param = inner.get("param") if isinstance(inner, dict) else None
    return param == "stream" or "to stream this model" in _message(err).lower()


def _status_error(spec: ModelSpec, err: openai.APIStatusError) -> ProviderError:
    inner = _error_object(err.body)
    message = _message(err)
    retryable, code = classify_error(err.status_code, code=inner.get("code"), kind=inner.get("type"), message=message)
    return ProviderError(
        f"{spec.provider} answered {err.status_code}: {message}",
        status=err.status_code,
        retryable=retryable,
        retry_after=retry_after_seconds(err.response.headers) if retryable else None,
        code=code,
    )


def _stream_error(spec: ModelSpec, body: object, fallback: str) -> ProviderError:
    inner = _error_object(body)
    message = str(inner.get("message") or fallback)
    retryable, code = classify_error(200, code=inner.get("code"), kind=inner.get("type"), message=message)
    return ProviderError(f"{spec.provider} stream failed: {message}", retryable=retryable, code=code)


def _error_object(body: object) -> dict[str, Any]:
    # OpenAI: {"error": {...}}; Gemini: [{"error": {...}}]; a stream's error event: {...} itself.
    if isinstance(body, list) and body:
        body = body[0]
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return inner
    return {}


def _message(err: openai.APIStatusError) -> str:
    inner = _error_object(err.body)
    message = inner.get("message")
    if message:
        raw = (inner.get("metadata") or {}).get("raw") if isinstance(inner.get("metadata"), dict) else None
        return f"{message} ({raw})" if raw else str(message)
    return err.message
