"""What counts as an answer to a required action (CONTRACT §12), and the text the model reads.

One set of rules for every channel: ``POST …/tasks/{id}/input``, reply links, email replies, the
console, A2A and MCP check an answer here before it reaches the workflow, and the workflow's
``provide_input`` validator checks it again (the authority while the action is pending). Pure and
deterministic, so the workflow runs it itself.

- ``choice`` must be one of the action's ``options``;
- ``answer`` must match the action's ``answer_schema``;
- ``decision`` (``approve`` | ``reject``) is required for ``approval`` and ``budget`` actions and
  means nothing to a ``question``;
- a question may always be answered in free text (``message``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any

from codetether.agent.asking import OPTION_LIMIT
from codetether.agent.structured import answer_problems
from codetether.tasks.contracts import ACTION_QUESTION, DECISION_KINDS, DECISIONS

# Stable refusal codes (422 at every face; the task keeps waiting).
INVALID_CHOICE = "invalid_choice"
INVALID_ANSWER = "invalid_answer"
INVALID_DECISION = "invalid_decision"
DECISION_REQUIRED = "decision_required"
EMPTY_ANSWER = "empty_answer"
ANSWER_REFUSALS = frozenset({INVALID_CHOICE, INVALID_ANSWER, INVALID_DECISION, DECISION_REQUIRED, EMPTY_ANSWER})



@dataclass
class Refusal:
    code: str
    field: str
    message: str


def _action(action: Any) -> dict[str, Any]:
    if is_dataclass(action) and not isinstance(action, type):
        return asdict(action)
    return dict(action or {})


def refusal(
    action: Any, *, message: str | None, choice: str | None, answer: Any, decision: str | None
) -> Refusal | None:
    """Why this answer cannot answer ``action`` (a :class:`RequiredAction` or its stored dict), or None."""
    act = _action(action)
    kind = act.get("kind") or ACTION_QUESTION
    options = act.get("options")
    schema = act.get("answer_schema")
    if kind in DECISION_KINDS:
        if decision is None:
            return Refusal(DECISION_REQUIRED, "decision", f"an {kind} is answered with decision: approve or reject")
        if decision not in DECISIONS:
            return Refusal(INVALID_DECISION, "decision", "decision must be approve or reject")
    elif decision is not None:
        return Refusal(INVALID_DECISION, "decision", "a question is answered with message, choice or answer, not a decision")
    if choice is not None:
        if not options:
            return Refusal(INVALID_CHOICE, "choice", "this action offers no options; answer with message")
        if choice not in options:
            shown = ", ".join(repr(o) for o in options[:OPTION_LIMIT])
            return Refusal(INVALID_CHOICE, "choice", f"choice must be one of the options: {shown}")
    if answer is not None:
        if not isinstance(schema, dict):
            return Refusal(INVALID_ANSWER, "answer", "this action has no answer_schema; answer with message")
        problems = answer_problems(schema, answer, limit=5)
        if problems:
            return Refusal(INVALID_ANSWER, "answer", "answer does not match answer_schema: " + "; ".join(problems))
    if kind not in DECISION_KINDS and choice is None and answer is None and not (message or "").strip():
        return Refusal(EMPTY_ANSWER, "message", "send message, choice or answer")
    return None


def answer_text(*, message: str | None, choice: str | None, answer: Any, decision: str | None) -> str:
    """The answer as one text: what the model reads as its ``ask_user`` result (and the log shows)."""
    parts: list[str] = []
    if decision is not None:
        parts.append(decision)
    if choice is not None:
        parts.append(choice)
    if answer is not None:
        parts.append(json.dumps(answer, ensure_ascii=False, separators=(",", ":")))
    if message and message.strip():
        parts.append(message.strip())
    return "\n\n".join(parts)


def match_option(options: list[str] | None, text: str) -> str | None:
    """The option ``text`` names (ignoring case, surrounding spaces and a final full stop), or None."""
    wanted = text.strip().rstrip(".!").strip().casefold()
    for option in options or []:
        if option.strip().casefold() == wanted:
            return option
    return None


def match_decision(text: str) -> str | None:
    """``approve`` or ``reject`` when ``text`` says so in one word (approve(d), reject(ed), yes, no)."""
    word = text.strip().rstrip(".!").strip().casefold()
    if word in ("approve", "approved", "yes", "ok", "lgtm"):
        return DECISIONS[0]
    if word in ("reject", "rejected", "no"):
        return DECISIONS[1]
    return None


def read_text_answer(action: Any, text: str) -> tuple[str | None, str | None, str | None]:
    """``(message, choice, decision)`` of an answer written as text (an email reply): for an
    approval the first line says approve or reject (``reject: too risky`` works too) and the rest
    is the message; for a question with options a first line naming one chooses it. Anything
    else is the message, whole."""
    act = _action(action)
    lines = text.strip().splitlines()
    first = lines[0] if lines else ""
    rest = "\n".join(lines[1:]).strip()
    if (act.get("kind") or ACTION_QUESTION) in DECISION_KINDS:
        head, sep, tail = first.partition(":")
        decision = match_decision(first) or (match_decision(head) if sep else None)
        if decision is None:
            return text, None, None
        said = tail.strip() if sep and match_decision(first) is None else ""
        return "\n\n".join(p for p in (said, rest) if p) or None, None, decision
    choice = match_option(act.get("options"), first)
    if choice is not None:
        return rest or None, choice, None
    return text, None, None
