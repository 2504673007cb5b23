"""The built-in ``demo`` model: deterministic, offline, and documented as a demonstration.

It is not a language model. It answers with a fixed template so the whole pipeline (queueing,
progress, needs_input, webhooks) can be tried without credentials. A few line commands in the
prompt exercise the paths a real model would take:

- ``ASK: <question>``: calls ``ask_user`` with that question (once per conversation turn);
- ``SLEEP: <seconds>``: works that long before answering (at most 3600 s), for trying cancel;
- ``FAIL: <message>``: fails the task as a provider refusal would.
"""

from __future__ import annotations

import asyncio
import re

from activities.backends.base import ASK_USER_TOOL, ProgressFn, ProviderError, TurnOutcome
from core.catalog import ModelSpec
from workflows.types import ChatMessage, ToolCall

_CMD = re.compile(r"^\s*(ASK|SLEEP|FAIL)\s*:\s*(.*?)\s*$", re.MULTILINE | re.IGNORECASE)
WORD_DELAY = 0.01


class DemoBackend:
    def __init__(self, **_deps) -> None:
        pass

    async def run_turn(self, spec: ModelSpec, messages: list[ChatMessage], progress: ProgressFn) -> TurnOutcome:
        last = messages[-1]
        if last.role == "tool":
            text = f"Thanks, noted: {last.content.strip()}. " + self._answer(messages)
            return await self._stream(text, progress)

        commands = {m.group(1).upper(): m.group(2) for m in _CMD.finditer(last.content)}
        if "FAIL" in commands:
            raise ProviderError(commands["FAIL"] or "demo failure requested", status=400, retryable=False)
        if "SLEEP" in commands:
            seconds = min(float(commands["SLEEP"] or 0), 3600.0)
            await progress(f"working for {seconds:g} s", 0)
            loop = asyncio.get_running_loop()
            end = loop.time() + seconds
            while (left := end - loop.time()) > 0:
                await asyncio.sleep(min(0.2, left))
        if "ASK" in commands:
            call_id = f"call_demo_{len(messages)}"
            question = commands["ASK"] or "Could you tell me more?"
            await progress("asking a question", None)
            assistant = ChatMessage(
                role="assistant",
                content="",
                tool_calls=[ToolCall(id=call_id, name=ASK_USER_TOOL, arguments={"question": question})],
            )
            return TurnOutcome(new_messages=[assistant], question=question, tool_call_id=call_id)
        return await self._stream(self._answer(messages), progress)

    @staticmethod
    def _answer(messages: list[ChatMessage]) -> str:
        user_turns = [m for m in messages if m.role == "user"]
        first = user_turns[0].content if user_turns else ""
        title = first.splitlines()[0] if first else "task"
        words = sum(len(m.content.split()) for m in user_turns)
        follow = f" This is follow-up message {len(user_turns) - 1}." if len(user_turns) > 1 else ""
        return (
            f'Demo result for "{title}": received {words} words in {len(user_turns)} message(s).{follow} '
            "This answer comes from CodeTether's offline demonstration model, not a language model; "
            "configure a provider for real answers."
        )

    @staticmethod
    async def _stream(text: str, progress: ProgressFn) -> TurnOutcome:
        words = text.split(" ")
        for i in range(0, len(words), 8):
            await asyncio.sleep(WORD_DELAY)
            await progress(f"writing ({min(i + 8, len(words))}/{len(words)} words)", int(100 * min(i + 8, len(words)) / len(words)))
        return TurnOutcome(new_messages=[ChatMessage(role="assistant", content=text)], text=text)
