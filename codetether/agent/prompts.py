"""System prompts per agent type and the opening messages of a run (pure, sandbox-safe)."""

from __future__ import annotations

from codetether.agent.contracts import ChatMessage
from codetether.agent.structured import instructions as structured_instructions
from codetether.files.contracts import Attachment
from codetether.files.naming import text_extract_path, workspace_names
from codetether.tasks.contracts import TaskInput

AGENT_TYPES = ("build", "plan", "general", "explore")
DEFAULT_AGENT_TYPE = "general"
# As forms and refusals list them: the default first.
AGENT_TYPE_CHOICES = (DEFAULT_AGENT_TYPE, *(t for t in AGENT_TYPES if t != DEFAULT_AGENT_TYPE))

_BASE = (
    "You are a CodeTether agent working on a task submitted through an automation platform. "
    "Answer with the finished result. If you cannot proceed without information only the person "
    "who submitted the task has, call the ask_user tool with one clear question."
)

SYSTEM_PROMPTS: dict[str, str] = {
    "general": _BASE,
    "build": _BASE + " You are building: produce concrete, working output (code, text, data) rather than advice.",
    "plan": _BASE + " You are planning: produce a step-by-step plan with risks and open questions; do not execute it.",
    "explore": _BASE + " You are exploring: investigate, compare options and report findings with evidence.",
}


def user_prompt(title: str, description: str) -> str:
    return f"{title}\n\n{description}" if description else title


def initial_messages(inp: TaskInput) -> list[ChatMessage]:
    messages = [ChatMessage(role="system", content=SYSTEM_PROMPTS.get(inp.agent_type, _BASE))]
    history = [m for m in inp.history if m.role != "system"]
    messages.extend(history)
    if inp.follow_up is not None:
        messages.append(ChatMessage(role="user", content=inp.follow_up))
    else:
        messages.append(ChatMessage(role="user", content=user_prompt(inp.title, inp.description)))
    return messages


# ---- the tool loop (codetether/agent/loop.py) -----------------------------------------------------

_AGENT_BASE = (
    "You are a CodeTether agent working on code. You work in a git checkout of the task's codebase (or an empty "
    "scratch folder when the task names none); paths are relative to its root. Use the tools to look "
    "before you change anything, keep changes small and focused, and run the project's checks with bash "
    "when there are any (bash has no network). When you are done, answer with a short summary of what you "
    "did and why. Call ask_user only when you cannot finish without information the person has."
)

AGENT_PROMPTS: dict[str, str] = {
    "build": _AGENT_BASE + " You are building: make the change the task asks for, end to end.",
    "general": _AGENT_BASE,
    "plan": (
        _AGENT_BASE + " You are planning: do not change the code (the workspace is read-only). Investigate, "
        "then write the plan with the write tool to plan.md (steps, files to touch, risks, open questions)."
    ),
    "explore": (
        _AGENT_BASE + " You are exploring: the workspace is read-only. Investigate and answer with your "
        "findings and the evidence (files and lines); your answer becomes findings.md."
    ),
}


def _size(n: int | None) -> str:
    if n is None:
        return "size unknown"
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.1f} MiB"


def attachments_note(attachments: list[Attachment]) -> str:
    """The lines that tell the agent where the task's input files are (CONTRACT §11)."""
    lines = ["Files attached to this task (read-only; copy one elsewhere to change it):"]
    for a, path in zip(attachments, workspace_names(attachments)):
        line = f"- {path} ({a.content_type or 'unknown type'}, {_size(a.size)})"
        text = text_extract_path(a, path)
        if text is not None:
            line += f"; its text is in {text}"
        lines.append(line)
    return "\n".join(lines)


# ``require_approval: "plan"`` (CONTRACT §12): the agent plans first, a person approves or rejects
# the plan, and only then does the task's own agent type carry it out.
PLAN_APPROVAL = "plan"
PLAN_APPROVED = "The plan is approved."
APPROVAL_PROMPT = "Approve this plan to have the agent carry it out, or reject it with feedback for a revised plan."
_PLAN_FIRST = (
    " This task is planned first: a person reviews your plan.md. Once they approve it you will be told to "
    "carry it out; then the workspace is writable and all the tools of the {agent} agent are yours. If they "
    "reject it you get their feedback: write a revised plan.md."
)


def plans_first(inp: TaskInput) -> bool:
    """True for a run that must have its plan approved before it changes anything (a follow-up
    run continues without a new plan)."""
    return inp.require_approval == PLAN_APPROVAL and inp.follow_up is None


def plan_approved_message(agent_type: str, note: str | None) -> str:
    text = (
        f"{PLAN_APPROVED} Carry it out now as the {agent_type} agent: the workspace is writable and all your "
        "tools are available. Make the change end to end, then answer with a short summary."
    )
    return text + (f"\n\nThe reviewer added: {note.strip()}" if note and note.strip() else "")


def plan_rejected_message(note: str | None) -> str:
    feedback = f" Their feedback:\n\n{note.strip()}\n\n" if note and note.strip() else " "
    return (
        f"The plan was rejected.{feedback}Revise the plan: write the new version to plan.md with the write "
        "tool, then answer with a short summary of what changed."
    )


def agent_initial_messages(inp: TaskInput) -> list[ChatMessage]:
    system = AGENT_PROMPTS.get(inp.agent_type, _AGENT_BASE)
    if plans_first(inp):
        system = AGENT_PROMPTS["plan"] + _PLAN_FIRST.format(agent=inp.agent_type)
    if inp.output_schema is not None:
        system = system + "\n\n" + structured_instructions()
    messages = [ChatMessage(role="system", content=system)]
    messages.extend(m for m in inp.history if m.role != "system")
    if inp.follow_up is not None:
        messages.append(ChatMessage(role="user", content=inp.follow_up))
    else:
        opening = user_prompt(inp.title, inp.description)
        if inp.attachments:
            opening += "\n\n" + attachments_note(inp.attachments)
        messages.append(ChatMessage(role="user", content=opening))
    return messages
