"""What an ``ask_user`` call may carry besides its question (CONTRACT §12): the options offered
and a JSON Schema for a structured answer, cleaned into what the task's ``required_action`` shows.
Pure, so the tool loop runs it in the workflow."""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from codetether.agent.structured import SCHEMA_LIMIT, remote_ref

OPTION_LIMIT = 20
OPTION_LENGTH = 200


def clean_options(raw: Any) -> list[str] | None:
    """The options of an ``ask_user`` call as the action shows them: distinct non-blank strings
    (at most 20, each at most 200 characters), or None when there are none."""
    if not isinstance(raw, list):
        return None
    out: list[str] = []
    for item in raw:
        if isinstance(item, (str, int, float)) and not isinstance(item, bool):
            text = str(item).strip()[:OPTION_LENGTH]
            if text and text not in out:
                out.append(text)
    return out[:OPTION_LIMIT] or None


def clean_schema(raw: Any) -> dict[str, Any] | None:
    """An ``answer_schema`` as the action shows it: a valid JSON Schema (draft 2020-12) object of at
    most 16 KiB without remote references, else None (the question is then answered in words)."""
    if not isinstance(raw, dict):
        return None
    text = json.dumps(raw, separators=(",", ":"), ensure_ascii=False)
    if len(text.encode()) > SCHEMA_LIMIT or remote_ref(raw) is not None:
        return None
    try:
        Draft202012Validator.check_schema(raw)
    except SchemaError:
        return None
    return raw
