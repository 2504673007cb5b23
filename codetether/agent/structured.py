"""Structured output (CONTRACT §11): a task's ``output_schema``, the ``submit_result`` tool that
carries the answer, and the checks on both.

The create face checks the schema (:func:`schema_problem`); the model is offered
``submit_result`` with the schema as its parameters (every provider has tool calls, so one path
serves OpenAI-compatible, Anthropic and the demo model alike); the workflow validates each
submission (:func:`answer_problems`) and hands the errors back to the model a bounded number of
times before the task fails with ``output_invalid``. Validation is pure and deterministic, so the
workflow runs it itself.
"""

from __future__ import annotations

import json
import re
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

SUBMIT_RESULT = "submit_result"
SCHEMA_LIMIT = 16 * 1024
# The task fails with ``output_invalid`` at its third answer that does not match (the model is
# shown what was wrong after the first two).
MAX_INVALID_ANSWERS = 3
_FENCED = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def schema_problem(schema: object) -> str | None:
    """Why ``schema`` cannot be a task's output schema, or None: a draft 2020-12 JSON Schema
    object of at most 16 KiB whose root is ``type: object`` and whose ``$ref``s stay inside it."""
    if not isinstance(schema, dict):
        return "must be a JSON Schema object"
    if len(json.dumps(schema, separators=(",", ":"), ensure_ascii=False).encode()) > SCHEMA_LIMIT:
        return "must be at most 16 KiB of JSON"
    if schema.get("type") != "object":
        return 'the root must be {"type": "object", ...}'
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as err:
        return f"not a valid JSON Schema (draft 2020-12): {err.message}"
    if (ref := remote_ref(schema)) is not None:
        return f"$ref {ref[:100]!r} points outside the schema; only local references (#/...) are allowed"
    return None


def remote_ref(schema: object) -> str | None:
    """The first ``$ref`` of ``schema`` that points outside it, or None."""
    return next((ref for ref in _refs(schema) if not ref.startswith("#")), None)


def _refs(node: object):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def answer_problems(schema: dict[str, Any], answer: object, *, limit: int = 10) -> list[str]:
    """What is wrong with ``answer`` against ``schema`` (at most ``limit`` lines), [] when valid."""
    errors = sorted(Draft202012Validator(schema).iter_errors(answer), key=lambda e: list(e.absolute_path))
    out = []
    for err in errors[:limit]:
        where = "/".join(str(p) for p in err.absolute_path) or "(root)"
        out.append(f"{where}: {err.message[:300]}")
    return out


def json_answer(text: str) -> object | None:
    """A final text that is itself the JSON answer (bare or in a ```json fence), else None."""
    fenced = _FENCED.match(text)
    raw = fenced.group(1) if fenced else text.strip()
    if not raw.startswith("{"):
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def submit_result_tool(schema: dict[str, Any]) -> dict[str, Any]:
    """The tool definition offered to the model when the task has an output schema."""
    return {
        "name": SUBMIT_RESULT,
        "description": (
            "Submit your final answer as a JSON object matching these parameters. Call it once, when "
            "you are done; the task ends with this object as its result."
        ),
        "parameters": schema,
    }


def instructions() -> str:
    return (
        "This task needs a structured answer: when you are done, call the submit_result tool with "
        "your answer as an object matching its parameters, instead of answering in prose."
    )


def retry_message(problems: list[str]) -> str:
    return "error: the result does not match the output schema:\n- " + "\n- ".join(problems) + \
        "\nCall submit_result again with a corrected object."


def example_for(schema: dict[str, Any], root: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """A value that satisfies the common JSON Schema keywords of ``schema`` (the demo model's answer)."""
    root = root if root is not None else schema
    if depth > 8:
        return None
    if "$ref" in schema and isinstance(schema["$ref"], str) and schema["$ref"].startswith("#/"):
        target: Any = root
        for part in schema["$ref"][2:].split("/"):
            target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(target, dict) else {}
        return example_for(target if isinstance(target, dict) else {}, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return example_for(schema[key][0], root, depth + 1)
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged.update(part)
        return example_for(merged, root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties") or {}
        return {name: example_for(sub if isinstance(sub, dict) else {}, root, depth + 1) for name, sub in props.items()}
    if kind == "array":
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        return [example_for(items, root, depth + 1) for _ in range(int(schema.get("minItems", 1) or 0))]
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        value = max(low, 1) if "exclusiveMinimum" in schema else low
        if "maximum" in schema:
            value = min(value, schema["maximum"])
        return int(value) if kind == "integer" else value
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    fmt = schema.get("format")
    text = {"date-time": "2026-01-01T00:00:00Z", "date": "2026-01-01", "email": "demo@example.com",
            "uri": "https://example.com/", "uuid": "00000000-0000-4000-8000-000000000000"}.get(fmt, "demo")
    if "minLength" in schema and len(text) < schema["minLength"]:
        text = text + "x" * (schema["minLength"] - len(text))
    if "maxLength" in schema:
        text = text[: schema["maxLength"]]
    return text
