"""What the SDK backends (:mod:`.openai`, :mod:`.anthropic`) share: one call of the agent's
tool loop with the offered tools, and the single-turn loop of runs started before the tool loop
(``ask_user`` only). Each backend supplies its client, its tool format and one call (``_call``)."""

from __future__ import annotations

from typing import Any

from codetether.agent.backends.base import (
    MAX_TOOL_STEPS,
    Completion,
    ProgressFn,
    ProviderError,
    TurnOutcome,
    ask_user_call,
)
from codetether.agent.catalog import ModelSpec
from codetether.agent.contracts import ChatMessage
from codetether.agent.tools import Tool


class ChatBackend:
    # The single-turn path's one tool (ask_user), in the backend's own format.
    LEGACY_TOOLS: list[dict[str, Any]] = []

    def _client(self, spec: ModelSpec) -> Any:
        raise NotImplementedError

    def _offer(self, names: list[str]) -> list[dict[str, Any]]:
        """The named tools (CONTRACT §6) in the provider's tool format."""
        raise NotImplementedError

    async def _call(self, client: Any, spec: ModelSpec, convo: list[ChatMessage], progress: ProgressFn,
                    tools: list[dict[str, Any]]) -> Completion:
        raise NotImplementedError

    async def complete(self, spec: ModelSpec, messages: list[ChatMessage], tools: list[Tool], progress: ProgressFn) -> Completion:
        """One call of the agent loop with the given tools offered."""
        return await self._call(self._client(spec), spec, list(messages), progress, self._offer(tools))

    async def run_turn(self, spec: ModelSpec, messages: list[ChatMessage], progress: ProgressFn) -> TurnOutcome:
        client = self._client(spec)
        convo = list(messages)
        new: list[ChatMessage] = []
        for _ in range(MAX_TOOL_STEPS):
            done = await self._call(client, spec, convo, progress, self.LEGACY_TOOLS)
            text, calls = done.text, done.tool_calls
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
