"""The built-in ``demo`` model: deterministic, offline, and documented as a demonstration.

It is not a language model. It answers with a fixed template so the whole pipeline (queueing,
progress, needs_input, webhooks) can be tried without credentials. A few line commands in the
prompt exercise the paths a real model would take:

- ``ASK: <question>``: calls ``ask_user`` with that question (once per conversation turn);
- ``SLEEP: <seconds>``: works that long before answering (at most 3600 s), for trying cancel;
- ``FAIL: <message>``: fails the task as a provider refusal would.

In the agent loop (:meth:`DemoBackend.complete`) these lines of the task's description call the
tools, one per turn, in the order written, then the demo answers with what the tools said:

- ``READ: <path>``, ``GLOB: <pattern>``, ``GREP: <regex>``
- ``WRITE: <path> :: <content>`` (``\\n`` in the content is a line break)
- ``EDIT: <path> :: <old text> :: <new text>``
- ``BASH: <command>``
- ``TODO: <item>`` (todowrite with that item in progress)
- ``ASK: <question>`` (ask_user); ``ASK: <question> [red|green|blue]`` offers those options
- ``TOOL: <name> <JSON arguments>`` (any tool by name, e.g. one the agent type is not offered)
- ``PLAN: <line>`` (a task with ``require_approval: "plan"``): while it plans, the PLAN: lines of
  the latest message that has any are written to plan.md (the other lines wait); once the plan is
  approved the other lines run. A rejection's feedback with PLAN: lines is the revised plan.

With an ``output_schema`` its answer is a ``submit_result`` call with an object built from the
schema (``TOOL: submit_result {...}`` lines submit objects of your own first).
"""

from __future__ import annotations

import asyncio
import json
import re

from codetether.agent.backends.base import ASK_USER_TOOL, Completion, ProgressFn, ProviderError, TurnOutcome, estimate_tokens
from codetether.agent.catalog import ModelSpec
from codetether.agent.contracts import ChatMessage, ToolCall
from codetether.agent.structured import SUBMIT_RESULT, example_for
from codetether.agent.prompts import PLAN_APPROVED
from codetether.agent.tools import PLAN_FILE, Tool, definition

_CMD = re.compile(r"^\s*(ASK|SLEEP|FAIL)\s*:\s*(.*?)\s*$", re.MULTILINE | re.IGNORECASE)
_TOOL_CMD = re.compile(
    r"^\s*(READ|GLOB|GREP|WRITE|EDIT|BASH|TODO|ASK|TOOL|SLEEP|FAIL|PLAN)\s*:\s?(.*?)\s*$", re.MULTILINE
)
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

    async def complete(self, spec: ModelSpec, messages: list[ChatMessage], tools: list[Tool], progress: ProgressFn) -> Completion:
        # The commands come from the latest user message that has any; the assistant messages with
        # tool calls since then say how many were done.
        # While a plan-first task plans (offered write but not edit), its PLAN: lines are the only
        # steps; once the plan is approved the other lines run, counted from the approval.
        names = {definition(t)["name"] for t in tools}
        planning = "write" in names and "edit" not in names
        start = max((i for i, m in enumerate(messages) if m.role == "user" and _steps_of(m.content, planning)), default=None)
        sent = sum(len(m.content) for m in messages)
        if start is not None:
            commands = _steps_of(messages[start].content, planning)
            begin = start
            if not planning:
                begin = max([start, *(i for i, m in enumerate(messages) if m.role == "user" and m.content.startswith(PLAN_APPROVED))])
            done = sum(1 for m in messages[begin + 1 :] if m.role == "assistant" and m.tool_calls)
            steps = [c for c in commands if c[0] not in ("SLEEP", "FAIL")]
            if done == 0:
                for verb, arg in commands:
                    if verb == "FAIL":
                        raise ProviderError(arg or "demo failure requested", status=400, retryable=False)
                    if verb == "SLEEP":
                        seconds = min(float(arg or 0), 3600.0)
                        await progress(f"working for {seconds:g} s", 0)
                        loop = asyncio.get_running_loop()
                        end = loop.time() + seconds
                        while (left := end - loop.time()) > 0:
                            await asyncio.sleep(min(0.2, left))
            if done < len(steps):
                verb, arg = steps[done]
                call = _tool_call(verb, arg, done + 1)
                if call is not None:
                    name, args = call
                    # No progress of its own: the tool call reports itself when it runs (as a
                    # provider's turn that only calls tools streams no text to report).
                    return Completion(
                        text="",
                        tool_calls=[ToolCall(id=f"call_demo_{len(messages)}", name=name, arguments=args)],
                        input_tokens=estimate_tokens("x" * sent),
                        output_tokens=estimate_tokens(json.dumps(args)),
                    )
            asks = {c.id for m in messages[start + 1 :] if m.role == "assistant" for c in m.tool_calls if c.name == ASK_USER_TOOL}
            results = [m for m in messages[start + 1 :] if m.role == "tool" and m.tool_call_id not in asks]
            if results:
                last = results[-1].content.strip()
                text = (
                    f"Demo agent finished: {len(results)} tool call(s). Last tool result: {last[:400]} "
                    "This answer comes from CodeTether's offline demonstration model, not a language model."
                )
                await self._stream(text, progress)
                return _final(text, tools, len(messages), sent)
        text = self._answer(messages)
        if messages and messages[-1].role == "tool":
            text = f"Thanks, noted: {messages[-1].content.strip()}. " + text
        await self._stream(text, progress)
        return _final(text, tools, len(messages), sent)

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


def _final(text: str, tools: list[Tool], n: int, sent: int) -> Completion:
    """The demo's last answer; with an output schema, a ``submit_result`` call holding an object
    built from the schema (its first enum value, minimum, a placeholder string, ...)."""
    schema = next((d["parameters"] for d in map(definition, tools) if d["name"] == SUBMIT_RESULT), None)
    if schema is None:
        return Completion(text=text, input_tokens=estimate_tokens("x" * sent), output_tokens=estimate_tokens(text))
    answer = example_for(schema)
    return Completion(
        text=text,
        tool_calls=[ToolCall(id=f"call_demo_{n}", name=SUBMIT_RESULT, arguments=answer)],
        input_tokens=estimate_tokens("x" * sent),
        output_tokens=estimate_tokens(text + json.dumps(answer)),
    )


def _steps_of(text: str, planning: bool) -> list[tuple[str, str]]:
    """The command lines of ``text`` the demo runs now: its PLAN: lines as one write of plan.md
    while planning (when it has any), else every other command line."""
    commands = [(m.group(1), m.group(2)) for m in _TOOL_CMD.finditer(text)]
    plan = [arg for verb, arg in commands if verb == "PLAN"]
    if planning and plan:
        return [("WRITE", f"{PLAN_FILE} :: " + "\\n".join(plan) + "\\n")]
    return [c for c in commands if c[0] != "PLAN"]


_OPTIONS = re.compile(r"^(.*?)\s*\[([^\[\]]*\|[^\[\]]*)\]\s*$")


def ask_arguments(arg: str) -> dict:
    """``ask_user`` arguments of an ``ASK:`` line: ``Which color? [red|green|blue]`` asks with options."""
    m = _OPTIONS.match(arg)
    if m is None:
        return {"question": arg or "Could you tell me more?"}
    options = [o.strip() for o in m.group(2).split("|") if o.strip()]
    return {"question": m.group(1) or "Which one?", "options": options}


def _tool_call(verb: str, arg: str, n: int) -> tuple[str, dict] | None:
    parts = [p.replace("\\n", "\n") for p in arg.split(" :: ")]
    if verb == "READ":
        return "read", {"filePath": arg}
    if verb == "GLOB":
        return "glob", {"pattern": arg}
    if verb == "GREP":
        return "grep", {"pattern": arg}
    if verb == "WRITE" and len(parts) >= 2:
        return "write", {"filePath": parts[0], "content": " :: ".join(parts[1:])}
    if verb == "EDIT" and len(parts) >= 3:
        return "edit", {"filePath": parts[0], "oldString": parts[1], "newString": parts[2]}
    if verb == "BASH":
        return "bash", {"command": arg.replace("\\n", "\n"), "description": "demo command"}
    if verb == "TODO":
        return "todowrite", {"todos": [{"content": arg, "status": "in_progress", "priority": "medium", "id": str(n)}]}
    if verb == "ASK":
        return ASK_USER_TOOL, ask_arguments(arg)
    if verb == "TOOL":
        name, _, raw = arg.partition(" ")
        try:
            args = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError:
            args = {}
        return name, args if isinstance(args, dict) else {}
    return None
