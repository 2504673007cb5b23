"""The backends against recorded real provider traffic, played by a loopback replay server.

Each ``replay("provider/name")`` plays a public cassette of real responses (sources in
tests/fixtures/provider_traffic/SOURCES.md). Flows no public recording has are scripted here
from the providers' documented wire formats and say so; they only prove the code agrees with
those documents.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from codetether.agent.backends.anthropic import AnthropicBackend, to_anthropic
from codetether.agent.backends.base import Finish, ProviderError, repair_transcript, retry_after_seconds, split_reasoning
from codetether.agent.backends.openai import OpenAIBackend, to_openai
from codetether.agent.catalog import ModelSpec
from codetether.agent.contracts import AgentErrorCode, ChatMessage, ToolCall
from codetether.agent.turns import MAX_CONTINUATIONS, OutputTruncated, complete_truthfully
from codetether.tasks.activities import provider_failure
from tests.support.replay_server import Recorded, ReplayServer, load_cassette, replay

ASK = [ChatMessage(role="user", content="What is the capital of the UK?")]


async def no_progress(message: str, percent: int | None) -> None:
    pass


def spec(kind: str, server: ReplayServer, **kw) -> ModelSpec:
    base = server.base_url + ("/v1" if kind == "openai" else "")
    return ModelSpec(name="m", provider=kind, kind=kind, provider_model="m", api_key="k", base_url=base, available=True, **kw)


def sse(*events: dict | str, event_names: list[str] | None = None) -> bytes:
    out = []
    for i, e in enumerate(events):
        data = e if isinstance(e, str) else json.dumps(e)
        name = f"event: {event_names[i]}\n" if event_names else ""
        out.append(f"{name}data: {data}\n\n")
    return "".join(out).encode()


# ---- OpenAI-compatible servers, recorded --------------------------------------------------------


async def test_openai_stream_reads_tool_call_and_exact_usage():
    with replay("openai/run_stream_sync_streams_real_model") as srv:
        done = await OpenAIBackend().complete(spec("openai", srv), ASK, ["read"], no_progress)
    assert [(c.name, c.arguments) for c in done.tool_calls] == [("get_capital", {"country": "UK"})]
    assert done.finish == Finish.TOOL_CALLS and not done.truncated
    # The usage chunk is asked for, so the counts are the provider's, not an estimate.
    assert srv.requests[0]["body"]["stream_options"] == {"include_usage": True}
    assert (done.input_tokens, done.output_tokens, done.usage_exact) == (53, 15, True)


async def test_openrouter_error_chunk_mid_stream_fails_at_once_with_the_providers_message():
    with replay("openrouter/openrouter_stream_error") as srv:
        with pytest.raises(ProviderError) as caught:
            await OpenAIBackend().complete(spec("openai", srv), ASK, ["read"], no_progress)
    err = caught.value
    assert not err.retryable and "Token limit reached" in str(err)
    failure = provider_failure(err, attempt=1)
    assert failure.non_retryable and failure.details[0]["code"] == "provider_rejected"
    assert "Token limit reached" in failure.message


async def test_openrouter_429_is_retried_no_sooner_than_retry_after():
    recorded = load_cassette("openrouter/openrouter_errors_raised")[0]
    # Derived: the recorded 429 with a Retry-After header added (the recording has none).
    derived = Recorded(status=recorded.status, headers={**recorded.headers, "retry-after": "40"}, body=recorded.body)
    with ReplayServer([derived]) as srv:
        with pytest.raises(ProviderError) as caught:
            await OpenAIBackend().complete(spec("openai", srv), ASK, ["read"], no_progress)
    err = caught.value
    assert err.retryable and err.status == 429 and err.retry_after == 40
    assert "temporarily rate-limited upstream" in str(err)
    failure = provider_failure(err, attempt=1)
    assert not failure.non_retryable and failure.next_retry_delay == timedelta(seconds=40)


async def test_groq_tool_validation_error_event_is_retryable():
    with replay("groq/tool_use_failed_error_streaming") as srv:
        with pytest.raises(ProviderError) as caught:
            await OpenAIBackend().complete(spec("openai", srv), ASK, ["read"], no_progress)
    assert caught.value.retryable and "Tool call validation failed" in str(caught.value)


async def test_gemini_json_answer_to_a_stream_request_and_thought_signature_echoed():
    with replay("openai/compatible_api_with_tool_calls_without_id") as srv:
        backend = OpenAIBackend()
        first = await backend.complete(spec("openai", srv), ASK, ["read"], no_progress)
        assert [c.name for c in first.tool_calls] == ["get_current_time"]
        assert first.tool_calls[0].id  # Gemini sends an empty id: one is made so the result can refer to it
        assert first.provider_data and first.tool_calls[0].id in first.provider_data["thought_signatures"]
        follow = ASK + [
            ChatMessage(role="assistant", content=first.text, tool_calls=first.tool_calls, provider_data=first.provider_data),
            ChatMessage(role="tool", content="Noon", tool_call_id=first.tool_calls[0].id),
        ]
        second = await backend.complete(spec("openai", srv), follow, ["read"], no_progress)
    assert second.text and not second.tool_calls
    sent_call = srv.requests[1]["body"]["messages"][1]["tool_calls"][0]
    assert sent_call["extra_content"]["google"]["thought_signature"] == first.provider_data["thought_signatures"][first.tool_calls[0].id]


async def test_openrouter_reasoning_stream_keeps_the_answer_only():
    with replay("openrouter/openrouter_stream_with_reasoning") as srv:
        done = await OpenAIBackend().complete(spec("openai", srv), ASK, ["read"], no_progress)
    assert done.text.startswith("I’m ChatGPT") and done.usage_exact


# ---- OpenAI-compatible, scripted from the documented chunk format (no public recording) --------


def chunk(delta: dict | None = None, finish: str | None = None, **extra) -> dict:
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}], **extra}


async def test_openai_tool_call_cut_at_the_limit_is_never_run_and_the_model_is_asked_again():
    cut = sse(chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                      "function": {"name": "write", "arguments": '{"filePath": "a.py", "content": "x'}}]}),
              chunk(finish="length"), "[DONE]")
    good = sse(chunk({"tool_calls": [{"index": 0, "id": "call_2", "type": "function",
                                       "function": {"name": "write", "arguments": '{"filePath": "a.py", "content": "x"}'}}]}),
               chunk(finish="tool_calls"), "[DONE]")
    events = {"content-type": "text/event-stream"}
    with ReplayServer([Recorded(200, events, cut), Recorded(200, events, good)]) as srv:
        done = await complete_truthfully(OpenAIBackend(), spec("openai", srv), ASK, ["write"], no_progress)
    assert [c.id for c in done.tool_calls] == ["call_2"]
    hint = srv.requests[1]["body"]["messages"][-1]
    assert hint["role"] == "user" and "NOT run" in hint["content"] and "`write`" in hint["content"]


async def test_openai_answer_cut_at_the_limit_is_continued_and_joined():
    events = {"content-type": "text/event-stream"}
    part1 = sse(chunk({"content": "The capital is "}), chunk(finish="length"), "[DONE]")
    part2 = sse(chunk({"content": "London."}), chunk(finish="stop"), "[DONE]")
    with ReplayServer([Recorded(200, events, part1), Recorded(200, events, part2)]) as srv:
        done = await complete_truthfully(OpenAIBackend(), spec("openai", srv), ASK, ["read"], no_progress)
    assert done.text == "The capital is London." and not done.truncated


async def test_an_answer_that_stays_cut_fails_output_truncated():
    events = {"content-type": "text/event-stream"}
    cut = [Recorded(200, events, sse(chunk({"content": "more "}), chunk(finish="length"), "[DONE]"))
           for _ in range(MAX_CONTINUATIONS + 1)]
    with ReplayServer(cut) as srv:
        with pytest.raises(OutputTruncated) as caught:
            await complete_truthfully(OpenAIBackend(), spec("openai", srv), ASK, ["read"], no_progress)
    failure = provider_failure(caught.value, attempt=1)
    assert failure.non_retryable and failure.details[0]["code"] == AgentErrorCode.OUTPUT_TRUNCATED


async def test_parallel_calls_without_index_are_not_merged():
    # Gemini's OpenAI endpoint streams parallel calls without distinct indexes.
    body = sse(chunk({"tool_calls": [{"id": "a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]}),
               chunk({"tool_calls": [{"id": "b", "type": "function", "function": {"name": "get_time", "arguments": '{"tz": "CET"}'}}]}),
               chunk(finish="tool_calls"), "[DONE]")
    with ReplayServer([Recorded(200, {"content-type": "text/event-stream"}, body)]) as srv:
        done = await OpenAIBackend().complete(spec("openai", srv), ASK, ["read"], no_progress)
    assert [(c.id, c.name) for c in done.tool_calls] == [("a", "get_weather"), ("b", "get_time")]


async def test_streaming_refused_falls_back_to_one_request_without_streaming():
    refused = json.dumps({"error": {"message": "Your organization must be verified to stream this model.",
                                    "type": "invalid_request_error", "param": "stream", "code": "unsupported_value"}}).encode()
    whole = json.dumps({"id": "x", "object": "chat.completion", "created": 1, "model": "o3",
                        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "London."}}],
                        "usage": {"prompt_tokens": 20, "completion_tokens": 3,
                                  "completion_tokens_details": {"reasoning_tokens": 64}}}).encode()
    json_ct = {"content-type": "application/json"}
    with ReplayServer([Recorded(400, json_ct, refused), Recorded(200, json_ct, whole)]) as srv:
        done = await OpenAIBackend().complete(spec("openai", srv), ASK, ["read"], no_progress)
    assert done.text == "London." and done.reasoning_tokens == 64
    assert "stream" not in srv.requests[1]["body"]


async def test_quota_429_is_not_retried():
    body = json.dumps({"error": {"message": "You exceeded your current quota, please check your plan and billing details.",
                                 "type": "insufficient_quota", "code": "insufficient_quota"}}).encode()
    with ReplayServer([Recorded(429, {"content-type": "application/json"}, body)]) as srv:
        with pytest.raises(ProviderError) as caught:
            await OpenAIBackend().complete(spec("openai", srv), ASK, ["read"], no_progress)
    assert not caught.value.retryable and caught.value.code == AgentErrorCode.QUOTA


# ---- Anthropic, recorded ------------------------------------------------------------------------


async def test_anthropic_parallel_tool_calls_from_a_json_answer():
    # The recording is a whole JSON message; served to our streaming request it must still be read.
    with replay("anthropic/multiple_parallel_tool_calls") as srv:
        done = await AnthropicBackend().complete(spec("anthropic", srv), ASK, ["read"], no_progress)
    assert [c.arguments["name"] for c in done.tool_calls] == ["Alice", "Bob", "Charlie", "Daisy"]
    assert done.finish == Finish.TOOL_CALLS and done.usage_exact and done.input_tokens > 0


async def test_anthropic_thinking_blocks_are_kept_and_sent_back():
    with replay("anthropic/anthropic_model_thinking_part_stream") as srv:
        done = await AnthropicBackend().complete(spec("anthropic", srv), ASK, ["read"], no_progress)
    thinking = done.provider_data["thinking"]
    assert thinking and thinking[0]["type"] == "thinking" and thinking[0]["signature"]
    _system, wire = to_anthropic(ASK + [ChatMessage(role="assistant", content=done.text, provider_data=done.provider_data),
                                        ChatMessage(role="user", content="And at night?")])
    assert wire[1]["content"][0] == thinking[0]


# ---- Anthropic, scripted from the documented event format ---------------------------------------


def a_events(*events: dict) -> bytes:
    return sse(*events, event_names=[e["type"] for e in events])


START = {"type": "message_start", "message": {"id": "msg", "type": "message", "role": "assistant", "content": [],
                                              "model": "m", "usage": {"input_tokens": 10, "output_tokens": 1}}}


async def test_anthropic_overloaded_error_event_inside_a_200_stream_is_retried():
    body = a_events(START, {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "so far"}},
                    {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    with ReplayServer([Recorded(200, {"content-type": "text/event-stream"}, body)]) as srv:
        with pytest.raises(ProviderError) as caught:
            await AnthropicBackend().complete(spec("anthropic", srv), ASK, ["read"], no_progress)
    assert caught.value.retryable and "Overloaded" in str(caught.value)


async def test_anthropic_write_cut_by_max_tokens_never_runs_and_max_tokens_comes_from_the_model():
    cut = a_events(START, {"type": "content_block_start", "index": 0,
                           "content_block": {"type": "tool_use", "id": "toolu_1", "name": "write", "input": {}}},
                   {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"filePath": "big.py", "con'}},
                   {"type": "content_block_stop", "index": 0},
                   {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 64000}},
                   {"type": "message_stop"})
    ok = a_events(START, {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                  {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Done in parts."}},
                  {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}},
                  {"type": "message_stop"})
    events = {"content-type": "text/event-stream"}
    with ReplayServer([Recorded(200, events, cut), Recorded(200, events, ok)]) as srv:
        done = await complete_truthfully(AnthropicBackend(), spec("anthropic", srv, max_output_tokens=64000), ASK,
                                         ["write"], no_progress)
    assert done.text == "Done in parts." and not done.tool_calls
    assert srv.requests[0]["body"]["max_tokens"] == 64000
    assert done.output_tokens == 64000 + 5


# ---- transcripts every provider accepts ---------------------------------------------------------


def test_a_question_that_timed_out_still_gives_a_valid_follow_up():
    # ask_user timed out: the call has no result, then the follow-up message arrives.
    convo = [ChatMessage(role="user", content="Paint the fence."),
             ChatMessage(role="assistant", content="", tool_calls=[ToolCall(id="call_1", name="ask_user", arguments={"question": "Color?"})]),
             ChatMessage(role="assistant", content=""),  # an empty answer
             ChatMessage(role="user", content="Blue, please.")]
    wire = to_openai(convo)
    assert [m["role"] for m in wire] == ["user", "assistant", "tool", "user"]
    assert wire[2]["tool_call_id"] == "call_1"
    _system, a_wire = to_anthropic(convo)
    assert [m["role"] for m in a_wire] == ["user", "assistant", "user"]
    assert a_wire[2]["content"][0]["type"] == "tool_result"
    assert all(b.get("text", "x") for m in a_wire for b in m["content"])  # no empty text block


def test_repair_keeps_a_complete_transcript_as_it_is():
    convo = [ChatMessage(role="user", content="Hi"),
             ChatMessage(role="assistant", content="", tool_calls=[ToolCall(id="c", name="read", arguments={})]),
             ChatMessage(role="tool", content="ok", tool_call_id="c"),
             ChatMessage(role="assistant", content="Done.")]
    assert repair_transcript(convo) == convo


def test_think_tags_are_reasoning_not_answer():
    assert split_reasoning("<think>\nplan it\n</think>\n\nHello!") == ("Hello!", "plan it")
    assert split_reasoning("Hello <think>no</think>") == ("Hello <think>no</think>", "")


def test_retry_after_in_its_three_spellings():
    assert retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    assert retry_after_seconds({"retry-after": "40"}) == 40
    assert 0 < retry_after_seconds({"retry-after": "Wed, 21 Oct 2099 07:28:00 GMT"})
    assert retry_after_seconds({}) is None


async def test_anthropic_history_with_an_empty_answer_sends_no_empty_block():
    convo = [ChatMessage(role="user", content="Hello"), ChatMessage(role="assistant", content=""),
             ChatMessage(role="user", content="Give me a potato")]
    with replay("anthropic/anthropic_model_empty_message_on_history") as srv:
        done = await AnthropicBackend().complete(spec("anthropic", srv), convo, ["read"], no_progress)
    assert "potato" in done.text
    sent = srv.requests[0]["body"]["messages"]
    assert [m["role"] for m in sent] == ["user"] and all(b["text"] for b in sent[0]["content"])


async def test_gemini_error_list_body_keeps_the_providers_message():
    # Gemini's OpenAI endpoint answers errors as a JSON list (scripted from its documented shape).
    body = json.dumps([{"error": {"code": 400, "message": "Function calling config is invalid: thought_signature missing",
                                  "status": "INVALID_ARGUMENT"}}]).encode()
    with ReplayServer([Recorded(400, {"content-type": "application/json"}, body)]) as srv:
        with pytest.raises(ProviderError) as caught:
            await OpenAIBackend().complete(spec("openai", srv), ASK, ["read"], no_progress)
    assert not caught.value.retryable and "thought_signature missing" in str(caught.value)
