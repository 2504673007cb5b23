"""Keeping a long run inside the model's context window (the ``model_turn`` activity calls it).

Before each model turn the transcript is measured against the model's ``context_window`` (models
file). When it would not fit in a safe share of the window:

1. **prune**: the outputs of older tool calls are replaced by a one-line note (the most recent
   outputs are kept whole); the model can run a tool again if it needs one back;
2. **summarise**: if that is not enough, the model is asked (without tools) to summarise the
   older part of the run for itself, and the summary replaces it.

A summary is durable: it is stored with the turn's own message in the transcript (``provider_data``
``compaction``: the summary and how many of the run's first messages it covers), so every later
turn, a retried activity and a replay read the same conversation without summarising again. The
task's first message (what was asked) is always kept. Nothing here runs in workflow code.
"""

from __future__ import annotations

import json

from codetether.agent.backends.base import AgentBackend, Completion, ProgressFn, ProviderError
from codetether.agent.catalog import ModelSpec
from codetether.agent.contracts import AgentErrorCode, ChatMessage

# Of the window, the share a request may fill (token estimates are rough; providers count more).
SAFE_SHARE = 0.7
# The most recent tool outputs, by estimated tokens of the budget, that are never pruned.
PROTECT_SHARE = 0.3
# The part of the budget the untouched tail keeps after a summary.
TAIL_SHARE = 0.4
PRUNED = "[output pruned to save context: {n} characters; run the tool again if you need it]"
SUMMARY_INTRO = "Summary of the work on this task so far (earlier messages were compacted):\n\n"
SUMMARISE = (
    "You are compacting the history of a coding-agent run so the agent can continue it. Write a "
    "concise summary for the agent itself: the goal, what has been done (files read, created or "
    "changed, commands run and their outcome), decisions and their reasons, open problems, and the "
    "next steps. Keep names, paths and numbers exact. Do not add anything that did not happen."
)
# What one message may contribute to the text that is summarised.
CLIP = 1500


def estimate(messages: list[ChatMessage]) -> int:
    """Tokens a request of these messages costs, roughly (four characters a token)."""
    chars = 0
    for m in messages:
        chars += len(m.content) + 16
        for c in m.tool_calls:
            chars += len(c.name) + len(json.dumps(c.arguments)) + 16
    return chars // 4 + 1


def view(messages: list[ChatMessage]) -> list[ChatMessage]:
    """The transcript as the model sees it: the newest stored summary replaces what it covers."""
    at = None
    for i in range(len(messages) - 1, -1, -1):
        if (messages[i].provider_data or {}).get("compaction"):
            at = i
            break
    if at is None:
        return list(messages)
    comp = messages[at].provider_data["compaction"]
    covers = int(comp.get("covers", 0))
    return _head(messages[:covers]) + [ChatMessage(role="user", content=SUMMARY_INTRO + comp["summary"])] + list(messages[covers:])


def _head(covered: list[ChatMessage]) -> list[ChatMessage]:
    # The system prompt and the task's own first message are never summarised away.
    head = [m for m in covered if m.role == "system"]
    first_user = next((m for m in covered if m.role == "user" and not m.content.startswith(SUMMARY_INTRO)), None)
    return head + ([first_user] if first_user is not None else [])


def prune(messages: list[ChatMessage], protect_tokens: int) -> list[ChatMessage]:
    """Older tool outputs replaced by a note; the newest ``protect_tokens`` of outputs stay."""
    out = list(messages)
    kept = 0
    for i in range(len(out) - 1, -1, -1):
        m = out[i]
        if m.role != "tool" or len(m.content) <= len(PRUNED) + 40:
            continue
        size = len(m.content) // 4
        if kept + size <= protect_tokens:
            kept += size
            continue
        out[i] = ChatMessage(role="tool", tool_call_id=m.tool_call_id, content=PRUNED.format(n=len(m.content)))
    return out


def budget_for(spec: ModelSpec, tools_tokens: int) -> int | None:
    if not spec.context_window:
        return None
    reserve = min(spec.max_output_tokens or 4096, spec.context_window // 4)
    return int(spec.context_window * SAFE_SHARE) - reserve - tools_tokens


async def fit(
    backend: AgentBackend, spec: ModelSpec, messages: list[ChatMessage], tools_tokens: int, progress: ProgressFn
) -> tuple[list[ChatMessage], dict | None, Completion | None]:
    """(messages to send, a new compaction to store or None, the summarising call or None)."""
    budget = budget_for(spec, tools_tokens)
    seen = view(messages)
    if budget is None or estimate(seen) <= budget:
        return seen, None, None
    pruned = prune(seen, int(budget * PROTECT_SHARE))
    if estimate(pruned) <= budget:
        return pruned, None, None
    cut = _cut(messages, int(budget * TAIL_SHARE))
    if cut is None:
        raise _too_long(spec, estimate(pruned))
    await progress("compacting the conversation to fit the model's context window", None)
    done = await backend.complete(spec, _summary_request(messages[:cut], budget), [], progress)
    if not done.text.strip():
        raise ProviderError("the model returned an empty summary while compacting the conversation", retryable=True)
    compaction = {"summary": done.text.strip(), "covers": cut}
    compacted = _head(view(messages[:cut])) + [ChatMessage(role="user", content=SUMMARY_INTRO + compaction["summary"])]
    compacted += prune(list(messages[cut:]), int(budget * PROTECT_SHARE))
    if estimate(compacted) > budget:
        raise _too_long(spec, estimate(compacted))
    return compacted, compaction, done


def _cut(messages: list[ChatMessage], tail_tokens: int) -> int | None:
    """Where the summarised part ends: the tail after it fits ``tail_tokens`` (pruned) and starts
    at a message that opens a step (never between a tool call and its result)."""
    best = None
    for i in range(len(messages) - 1, 0, -1):
        m = messages[i]
        if m.role == "tool":
            continue
        if estimate(prune(messages[i:], tail_tokens // 2)) > tail_tokens:
            break
        best = i
    if best is None or best <= 1:
        return None
    return best


def _summary_request(covered: list[ChatMessage], budget: int) -> list[ChatMessage]:
    lines = []
    for m in view(covered):
        if m.role == "system":
            continue
        text = m.content if len(m.content) <= CLIP else m.content[: CLIP // 2] + "\n[...]\n" + m.content[-CLIP // 2:]
        calls = "".join(f"\n-> {c.name}({json.dumps(c.arguments)[:300]})" for c in m.tool_calls)
        lines.append(f"[{m.role}] {text}{calls}")
    body = "\n\n".join(lines)
    limit = max(2000, budget * 4 - len(SUMMARISE) - 200)
    if len(body) > limit:
        body = "[...earlier part omitted...]\n" + body[-limit:]
    return [ChatMessage(role="system", content=SUMMARISE), ChatMessage(role="user", content=body)]


def _too_long(spec: ModelSpec, tokens: int) -> ProviderError:
    return ProviderError(
        f"the conversation needs about {tokens} tokens after compaction; {spec.name} reads at most "
        f"{spec.context_window}",
        retryable=False,
        code=AgentErrorCode.CONTEXT_LENGTH,
    )
