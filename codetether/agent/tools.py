"""The agent's tools as the model sees them (CONTRACT §6: names, parameters, per-type sets).

Pure data shared by the backends (which offer :func:`tools_for`), the workflow (which refuses a
call its agent type does not allow before any activity runs) and ``codetether/agent/workspace/toolcalls.py``
(which runs them).
"""

from __future__ import annotations

import json
from typing import Any

ASK_USER = "ask_user"

_STR = {"type": "string"}
_INT = {"type": "integer"}

TOOL_SPECS: dict[str, dict[str, Any]] = {
    "read": {
        "description": "Read a text file of the workspace. Returns numbered lines (`N: text`).",
        "parameters": {
            "type": "object",
            "properties": {
                "filePath": {**_STR, "description": "Path relative to the workspace root."},
                "offset": {**_INT, "description": "First line to read (1-based)."},
                "limit": {**_INT, "description": "Most lines to read (default 2000)."},
            },
            "required": ["filePath"],
        },
    },
    "glob": {
        "description": "Find files by glob pattern (e.g. `src/**/*.py`); at most 100 paths, newest first.",
        "parameters": {
            "type": "object",
            "properties": {"pattern": _STR, "path": {**_STR, "description": "Folder to search in."}},
            "required": ["pattern"],
        },
    },
    "grep": {
        "description": "Search file contents with a regular expression; at most 100 `path:line: text` matches.",
        "parameters": {
            "type": "object",
            "properties": {
                "pattern": {**_STR, "description": "A regular expression."},
                "path": {**_STR, "description": "Folder or file to search."},
                "include": {**_STR, "description": "Only files matching this glob, e.g. `*.ts`."},
            },
            "required": ["pattern"],
        },
    },
    "edit": {
        "description": (
            "Replace an exact string in a file. `oldString` must occur exactly once unless `replaceAll`; "
            "an empty `oldString` creates the file with `newString`."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "filePath": _STR,
                "oldString": _STR,
                "newString": _STR,
                "replaceAll": {"type": "boolean"},
            },
            "required": ["filePath", "oldString", "newString"],
        },
    },
    "write": {
        "description": "Write a whole file (created or replaced).",
        "parameters": {
            "type": "object",
            "properties": {"filePath": _STR, "content": _STR},
            "required": ["filePath", "content"],
        },
    },
    "bash": {
        "description": (
            "Run a shell command in the workspace, in a sandbox without network access. Returns the "
            "output (stdout and stderr, capped) and the exit code."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "command": _STR,
                "timeout": {**_INT, "description": "Milliseconds (default 120000, at most 600000)."},
                "workdir": {**_STR, "description": "Folder to run in, relative to the workspace root."},
                "description": {**_STR, "description": "What the command does, in a few words."},
            },
            "required": ["command"],
        },
    },
    "todowrite": {
        "description": "Replace your task list (shown to the person as progress).",
        "parameters": {
            "type": "object",
            "properties": {
                "todos": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "content": _STR,
                            "status": {"type": "string", "enum": ["pending", "in_progress", "completed", "cancelled"]},
                            "priority": {"type": "string", "enum": ["high", "medium", "low"]},
                            "id": _STR,
                        },
                        "required": ["content", "status"],
                    },
                }
            },
            "required": ["todos"],
        },
    },
    ASK_USER: {
        "description": (
            "Ask the person who submitted this task a question and wait for their answer. Use it only when "
            "you cannot finish without information they have. With options, the answer is one of them."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "question": {"type": "string", "description": "The question to ask, in one or two sentences."},
                "options": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "The answers the person may pick from (shown as buttons), when the choice is closed.",
                },
                "answer_schema": {
                    "type": "object",
                    "description": "A JSON Schema the answer must match, when you need a structured answer (a form).",
                },
            },
            "required": ["question"],
        },
    },
}

_ALL = tuple(TOOL_SPECS)
TOOL_SETS: dict[str, tuple[str, ...]] = {
    "build": _ALL,
    "general": _ALL,
    "plan": ("read", "glob", "grep", "bash", "write", "todowrite", ASK_USER),
    "explore": ("read", "glob", "grep", "bash", ASK_USER),
}
# Agent types whose workspace is read-only (bash mounts it read-only; plan may write only plan.md).
READ_ONLY_TYPES = frozenset({"plan", "explore"})
PLAN_FILE = "plan.md"
FINDINGS_FILE = "findings.md"
# Tools that can change files in the workspace (a checkpoint follows a turn that ran one).
MUTATING = frozenset({"edit", "write", "bash"})
# Tools that only look at the workspace, with bounded work on the file tools' pool: a model turn
# running on the workspace's worker runs them itself instead of handing each to its own activity.
INLINE_TOOLS = frozenset({"read", "glob", "grep"})


def tools_for(agent_type: str) -> list[str]:
    return list(TOOL_SETS.get(agent_type, TOOL_SETS["general"]))


def allowed(agent_type: str, name: str) -> bool:
    return name in TOOL_SETS.get(agent_type, TOOL_SETS["general"])


# A tool as offered: the name of one of TOOL_SPECS, or a task's own definition
# ``{"name", "description", "parameters"}`` (``submit_result``, codetether/agent/structured.py).
Tool = str | dict[str, Any]


def definition(tool: Tool) -> dict[str, Any]:
    """``{"name", "description", "parameters"}`` of an offered tool."""
    if isinstance(tool, str):
        return {"name": tool, **TOOL_SPECS[tool]}
    return tool


def tool_names(tools: list[Tool]) -> list[str]:
    return [definition(t)["name"] for t in tools]


def tools_tokens(tools: list[Tool]) -> int:
    """Roughly what offering these tools costs in a request's tokens (their JSON schemas)."""
    return len(json.dumps([definition(t) for t in tools])) // 4
