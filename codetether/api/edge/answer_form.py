"""An HTML form for a ``required_action.answer_schema`` (CONTRACT §12), shared by the reply-link
page and the console, and the answer read back from the posted form.

Simple schemas get one input per value: a root of type string, number, integer or boolean, or an
object whose properties are of those types (an ``enum`` is a select). Anything else is one
``answer_json`` box holding JSON. The answer is then checked against the schema by the service
like every other channel's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Any

SIMPLE = ("string", "number", "integer", "boolean")
JSON_FIELD = "answer_json"
ROOT_FIELD = "answer"


@dataclass
class FormField:
    name: str
    label: str
    type: str
    required: bool = False
    enum: list[Any] | None = None


def _field(name: str, label: str, schema: Any, required: bool) -> FormField | None:
    if not isinstance(schema, dict):
        return None
    enum = schema.get("enum")
    kind = schema.get("type")
    if isinstance(enum, list) and enum and all(isinstance(v, (str, int, float, bool)) for v in enum):
        return FormField(name, label, kind if kind in SIMPLE else "string", required, list(enum))
    if kind in SIMPLE:
        return FormField(name, label, kind, required)
    return None


def form_fields(schema: dict[str, Any] | None) -> list[FormField] | None:
    """The inputs of a simple schema, or None (answer it as JSON)."""
    if not isinstance(schema, dict):
        return None
    if schema.get("type") == "object":
        props = schema.get("properties")
        if not isinstance(props, dict) or not props:
            return None
        required = set(schema.get("required") or [])
        fields = [_field(f"{ROOT_FIELD}.{name}", str(sub.get("title") or name) if isinstance(sub, dict) else name,
                         sub, name in required) for name, sub in props.items()]
        return None if any(f is None for f in fields) else fields  # type: ignore[return-value]
    root = _field(ROOT_FIELD, str(schema.get("title") or "Answer"), schema, True)
    return [root] if root is not None else None


def _coerce(field: FormField, raw: str) -> Any:
    if field.enum is not None:
        return next((v for v in field.enum if str(v) == raw), raw)
    if field.type == "boolean":
        return raw.lower() in ("true", "on", "yes", "1")
    if field.type == "integer":
        return int(raw)
    if field.type == "number":
        return float(raw)
    return raw


def answer_from_form(schema: dict[str, Any] | None, form: Mapping[str, Any]) -> tuple[Any, str | None]:
    """The answer a posted form holds (None when it holds none) and, when it cannot be read, why."""
    raw_json = form.get(JSON_FIELD)
    if isinstance(raw_json, str) and raw_json.strip():
        try:
            return json.loads(raw_json), None
        except ValueError:
            return None, "the answer is not valid JSON"
    fields = form_fields(schema)
    if not fields:
        return None, None
    values: dict[str, Any] = {}
    for field in fields:
        raw = form.get(field.name)
        if field.type == "boolean" and field.enum is None:
            raw = "true" if raw else "false"
        if not isinstance(raw, str) or raw == "":
            continue
        try:
            values[field.name.removeprefix(f"{ROOT_FIELD}.")] = _coerce(field, raw)
        except ValueError:
            return None, f"{field.label}: not a {field.type}"
    if fields[0].name == ROOT_FIELD:
        return values.get(ROOT_FIELD), None
    return (values or None), None


def fields_html(schema: dict[str, Any] | None) -> str:
    """The inputs for ``schema`` (escaped HTML, without the form element around them)."""
    fields = form_fields(schema)
    if fields is None:
        return (f"<label for={JSON_FIELD}>Answer (JSON)</label>"
                f"<textarea id={JSON_FIELD} name={JSON_FIELD} class=json></textarea>")
    out = []
    for f in fields:
        fid = escape(f.name.replace(".", "-"), quote=True)
        name = escape(f.name, quote=True)
        req = " required" if f.required and f.type != "boolean" else ""
        label = f"<label for={fid}>{escape(f.label)}</label>"
        if f.enum is not None:
            opts = "".join(f"<option value='{escape(str(v), quote=True)}'>{escape(str(v))}</option>" for v in f.enum)
            out.append(f"{label}<select id={fid} name='{name}'{req}><option value=''></option>{opts}</select>")
        elif f.type == "boolean":
            out.append(f"<label><input type=checkbox id={fid} name='{name}' value=true> {escape(f.label)}</label>")
        else:
            kind = {"integer": "number", "number": "number"}.get(f.type, "text")
            step = " step=1" if f.type == "integer" else " step=any" if f.type == "number" else ""
            out.append(f"{label}<input type={kind}{step} id={fid} name='{name}'{req}>")
    return "".join(out)
