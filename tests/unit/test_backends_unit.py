"""Pure parts of the agent backends: message conversion to each provider's wire format, error
classification, the ask_user tool, the demo model, and one OpenAI/Anthropic turn each against
the scripted servers (no Temporal)."""

from __future__ import annotations

import json

import pytest

from codetether.agent.backends.anthropic import TOOLS as ANTHROPIC_TOOLS
from codetether.agent.backends.anthropic import AnthropicBackend, to_anthropic
from codetether.agent.backends.base import ASK_USER_TOOL, MAX_TOOL_STEPS, ProviderError, ask_user_call, classify_status
from codetether.agent.backends.factory import backend_for
from codetether.agent.backends.demo import DemoBackend
from codetether.agent.backends.openai import TOOLS as OPENAI_TOOLS
from codetether.agent.backends.openai import OpenAIBackend, to_openai
from codetether.agent.catalog import ModelSpec
from tests.support.anthropic_server import AnthropicServer
from tests.support.openai_server import OpenAIServer
from codetether.agent.contracts import ChatMessage, ToolCall

CONVERSATION = [
    ChatMessage(role="system", content="You are helpful."),
    ChatMessage(role="user", content="Paint the fence."),
    ChatMessage(role="assistant", content="", tool_calls=[ToolCall(id="call_1", name="ask_user", arguments={"question": "Which color?"})]),
    ChatMessage(role="tool", content="Blue.", tool_call_id="call_1"),
    ChatMessage(role="assistant", content="Painted it blue."),
    ChatMessage(role="user", content="Now the gate."),
    ChatMessage(role="user", content="And the door."),
]


async def no_progress(message: str, percent: int | None) -> None:
    pass


def spec(kind: str, base_url: str | None = None, model: str = "m") -> ModelSpec:
    return ModelSpec(name=model, provider=kind, kind=kind, provider_model=model, api_key="k", base_url=base_url, available=True)


def test_to_openai():
    out = to_openai(CONVERSATION)
    assert out == [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Paint the fence."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "ask_user", "arguments": '{"question": "Which color?"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Blue."},
        {"role": "assistant", "content": "Painted it blue."},
        {"role": "user", "content": "Now the gate."},
        {"role": "user", "content": "And the door."},
    ]
    assert json.loads(out[2]["tool_calls"][0]["function"]["arguments"]) == {"question": "Which color?"}


def test_to_anthropic():
    system, out = to_anthropic(CONVERSATION)
    assert system == "You are helpful."
    assert out == [
        {"role": "user", "content": [{"type": "text", "text": "Paint the fence."}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "ask_user", "input": {"question": "Which color?"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "Blue."}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Painted it blue."}]},
        # Anthropic wants alternating roles: consecutive user messages merge into one.
        {"role": "user", "content": [{"type": "text", "text": "Now the gate."}, {"type": "text", "text": "And the door."}]},
    ]


def test_to_anthropic_without_system_and_text_with_tool_call():
    system, out = to_anthropic(
        [
            ChatMessage(role="user", content="hi"),
            ChatMessage(role="assistant", content="One question.", tool_calls=[ToolCall(id="t1", name="ask_user", arguments={"question": "q"})]),
        ]
    )
    assert system == ""
    assert out[1]["content"] == [
        {"type": "text", "text": "One question."},
        {"type": "tool_use", "id": "t1", "name": "ask_user", "input": {"question": "q"}},
    ]


def test_tools_offer_ask_user_with_one_string_parameter():
    [o] = OPENAI_TOOLS
    assert o["type"] == "function" and o["function"]["name"] == ASK_USER_TOOL
    [a] = ANTHROPIC_TOOLS
    assert a["name"] == ASK_USER_TOOL
    for schema in (o["function"]["parameters"], a["input_schema"]):
        assert schema["type"] == "object"
        assert schema["properties"].keys() == {"question"}
        assert schema["properties"]["question"]["type"] == "string"
        assert schema["required"] == ["question"]


@pytest.mark.parametrize(
    "status, retry",
    [(None, True), (400, False), (401, False), (403, False), (404, False), (408, True), (409, True), (422, False),
     (425, True), (429, True), (500, True), (502, True), (503, True), (529, True)],
)
def test_classify_status(status, retry):
    assert classify_status(status) is retry


def test_ask_user_call():
    assert ask_user_call(ToolCall(id="1", name="ask_user", arguments={"question": "Why?"})) == "Why?"
    assert ask_user_call(ToolCall(id="1", name="ask_user", arguments={})) == "Could you give me more details?"
    assert ask_user_call(ToolCall(id="1", name="web_search", arguments={"question": "x"})) is None


def test_backend_for():
    assert isinstance(backend_for("demo"), DemoBackend)
    assert isinstance(backend_for("openai"), OpenAIBackend)
    assert isinstance(backend_for("anthropic"), AnthropicBackend)
    with pytest.raises(ProviderError) as err:
        backend_for("carrier-pigeon")
    assert err.value.retryable is False


async def test_demo_backend_answers_asks_and_fails(monkeypatch):
    monkeypatch.setattr("codetether.agent.backends.demo.WORD_DELAY", 0)
    demo = DemoBackend()
    s = spec("demo")
    first = [ChatMessage(role="system", content="sys"), ChatMessage(role="user", content="Title\n\nthree more words")]
    out = await demo.run_turn(s, first, no_progress)
    assert out.question is None
    assert out.text.startswith('Demo result for "Title": received 4 words in 1 message(s).')
    assert out.new_messages == [ChatMessage(role="assistant", content=out.text)]
    assert out.text == (await demo.run_turn(s, first, no_progress)).text  # deterministic

    asking = [ChatMessage(role="user", content="Paint\nASK: Which color?")]
    out = await demo.run_turn(s, asking, no_progress)
    assert out.question == "Which color?"
    [call] = out.new_messages[0].tool_calls
    assert call.name == "ask_user" and call.arguments == {"question": "Which color?"} and out.tool_call_id == call.id

    answered = asking + out.new_messages + [ChatMessage(role="tool", content="Blue", tool_call_id=call.id)]
    out = await demo.run_turn(s, answered, no_progress)
    assert out.question is None and out.text.startswith("Thanks, noted: Blue.")

    with pytest.raises(ProviderError) as err:
        await demo.run_turn(s, [ChatMessage(role="user", content="FAIL: nope")], no_progress)
    assert err.value.status == 400 and err.value.retryable is False and str(err.value) == "nope"


async def test_openai_turn_streams_text_and_reports_progress():
    seen: list[str] = []

    async def progress(message: str, percent: int | None) -> None:
        seen.append(message)

    with OpenAIServer() as srv:
        srv.reply_text("Hello from the stream", chunks=4)
        out = await OpenAIBackend().run_turn(spec("openai", srv.base_url, "gpt-x"), CONVERSATION[:2], progress)
        assert out.text == "Hello from the stream" and out.question is None
        assert seen[-1] == "Hello from the stream"
        body = srv.requests[0].body
        assert body["model"] == "gpt-x" and body["stream"] is True and body["messages"] == to_openai(CONVERSATION[:2])


async def test_openai_turn_ask_user_and_errors():
    with OpenAIServer() as srv:
        srv.reply_ask_user("Which one?", call_id="call_9", text="Hmm.")
        out = await OpenAIBackend().run_turn(spec("openai", srv.base_url), CONVERSATION[:2], no_progress)
        assert out.question == "Which one?" and out.tool_call_id == "call_9"
        assert out.new_messages == [
            ChatMessage(role="assistant", content="Hmm.", tool_calls=[ToolCall(id="call_9", name="ask_user", arguments={"question": "Which one?"})])
        ]

        srv.reply_error(400, "bad request body").reply_error(503, "overloaded")
        with pytest.raises(ProviderError) as err:
            await OpenAIBackend().run_turn(spec("openai", srv.base_url), CONVERSATION[:2], no_progress)
        assert err.value.status == 400 and not err.value.retryable and "400" in str(err.value) and "bad request body" in str(err.value)
        with pytest.raises(ProviderError) as err:
            await OpenAIBackend().run_turn(spec("openai", srv.base_url), CONVERSATION[:2], no_progress)
        assert err.value.status == 503 and err.value.retryable


async def test_openai_unreachable_is_retryable():
    with OpenAIServer() as srv:
        url = srv.base_url
    with pytest.raises(ProviderError) as err:
        await OpenAIBackend().run_turn(spec("openai", url), CONVERSATION[:2], no_progress)
    assert err.value.retryable and err.value.status is None


async def test_anthropic_turn_text_tool_and_error():
    with AnthropicServer() as srv:
        srv.reply_text("Bonjour", chunks=3)
        out = await AnthropicBackend().run_turn(spec("anthropic", srv.url, "claude-x"), CONVERSATION[:2], no_progress)
        assert out.text == "Bonjour" and out.question is None
        body = srv.requests[0].body
        assert body["system"] == "You are helpful." and body["model"] == "claude-x" and body["stream"] is True

        srv.reply_ask_user("Size?", call_id="toolu_1")
        out = await AnthropicBackend().run_turn(spec("anthropic", srv.url), CONVERSATION[:2], no_progress)
        assert out.question == "Size?" and out.tool_call_id == "toolu_1"

        srv.reply_error(400, "bad").reply_error(529, "overloaded")
        with pytest.raises(ProviderError) as err:
            await AnthropicBackend().run_turn(spec("anthropic", srv.url), CONVERSATION[:2], no_progress)
        assert err.value.status == 400 and not err.value.retryable
        with pytest.raises(ProviderError) as err:
            await AnthropicBackend().run_turn(spec("anthropic", srv.url), CONVERSATION[:2], no_progress)
        assert err.value.status == 529 and err.value.retryable


async def test_a_tool_the_agent_does_not_offer_gets_an_error_result():
    with OpenAIServer() as srv:
        srv.reply_tool_call("web_search", {"query": "x"}, call_id="call_ws").reply_text("Fine, without searching.")
        out = await OpenAIBackend().run_turn(spec("openai", srv.base_url), CONVERSATION[:2], no_progress)
        assert out.text == "Fine, without searching." and out.question is None
        second = srv.requests[1].body["messages"]
        assert second[-1] == {"role": "tool", "tool_call_id": "call_ws", "content": "error: no tool named web_search"}


async def test_a_model_that_only_calls_unknown_tools_gives_up():
    with OpenAIServer() as srv:
        for _ in range(MAX_TOOL_STEPS):
            srv.reply_tool_call("web_search", {"query": "x"})
        with pytest.raises(ProviderError) as err:
            await OpenAIBackend().run_turn(spec("openai", srv.base_url), CONVERSATION[:2], no_progress)
        assert not err.value.retryable
        assert len(srv.requests) == MAX_TOOL_STEPS


async def test_scripted_servers_answer_without_streaming_too():
    import anthropic
    import openai

    with OpenAIServer() as srv:
        srv.reply_text("plain answer").reply_ask_user("Why?", call_id="call_q")
        client = openai.AsyncOpenAI(api_key="k", base_url=srv.base_url, max_retries=0)
        first = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        assert first.choices[0].message.content == "plain answer"
        second = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        [call] = second.choices[0].message.tool_calls
        assert call.id == "call_q" and json.loads(call.function.arguments) == {"question": "Why?"}
        assert second.choices[0].finish_reason == "tool_calls"
        assert all(r.finished_at is not None and r.disconnected_at is None for r in srv.requests)
        await client.close()

    with AnthropicServer() as srv:
        srv.reply_ask_user("Size?", call_id="toolu_s", text="First:")
        client = anthropic.AsyncAnthropic(api_key="k", base_url=srv.url, max_retries=0)
        msg = await client.messages.create(model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
        assert [b.type for b in msg.content] == ["text", "tool_use"]
        assert msg.content[1].input == {"question": "Size?"} and msg.stop_reason == "tool_use"
        await client.close()
