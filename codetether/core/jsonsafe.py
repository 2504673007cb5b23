"""Checks that caller-supplied JSON (a task's ``metadata``) can be stored and read back everywhere.

What the API accepts must come back unchanged from ``GET``, from list pages, from webhook bodies
and from SSE, on SQLite and on PostgreSQL. These values cannot:

* nesting deeper than :data:`MAX_DEPTH` (deep documents exhaust recursion while being re-encoded,
  so the task would be written and then unreadable) — ``json_too_deep``;
* ``NaN``, ``Infinity``, ``-Infinity`` (not JSON; they would silently turn into ``null``) —
  ``json_invalid_number``;
* integers beyond ±(2^53 − 1) (JavaScript, and so n8n's re-serialise signature check, rounds
  them) — ``json_integer_out_of_range``;
* strings (keys included) with NUL or an unpaired surrogate (PostgreSQL text and jsonb refuse
  them) — ``json_invalid_string``.

:func:`check_json` raises :class:`UnsafeJSON` with one of those codes; the task schema turns it
into a 422 problem with that ``code`` (``codetether/api/rest/schemas/tasks.py``).
"""

from __future__ import annotations

import math
import re
from typing import Any

MAX_DEPTH = 32
MAX_SAFE_INTEGER = 2**53 - 1
_BAD_CHARS = re.compile(r"[\x00\ud800-\udfff]")

CODES = frozenset({"json_too_deep", "json_invalid_number", "json_integer_out_of_range", "json_invalid_string"})


class UnsafeJSON(ValueError):
    def __init__(self, code: str, message: str, path: str) -> None:
        super().__init__(f"{message} (at {path})")
        self.code = code
        self.message = message
        self.path = path


def _check_string(s: str, path: str) -> None:
    if _BAD_CHARS.search(s):
        raise UnsafeJSON("json_invalid_string", "strings must not contain NUL or unpaired surrogate characters", path)


def check_json(value: Any, *, max_depth: int = MAX_DEPTH, root: str = "$") -> None:
    """Raises :class:`UnsafeJSON` for the first value that could not be stored and read back.

    Iterative, so a hostile document cannot exhaust the stack here either. The top-level value
    is depth 1; each nested object or array adds one.
    """
    stack: list[tuple[Any, int, str]] = [(value, 1, root)]
    while stack:
        v, depth, path = stack.pop()
        if isinstance(v, dict):
            if depth > max_depth:
                raise UnsafeJSON("json_too_deep", f"nesting deeper than {max_depth} levels", path)
            for k, item in v.items():
                key = str(k)
                _check_string(key, path)
                stack.append((item, depth + 1, f"{path}.{key}"))
        elif isinstance(v, (list, tuple)):
            if depth > max_depth:
                raise UnsafeJSON("json_too_deep", f"nesting deeper than {max_depth} levels", path)
            for i, item in enumerate(v):
                stack.append((item, depth + 1, f"{path}[{i}]"))
        elif isinstance(v, str):
            _check_string(v, path)
        elif isinstance(v, bool) or v is None:
            continue
        elif isinstance(v, int):
            if abs(v) > MAX_SAFE_INTEGER:
                raise UnsafeJSON(
                    "json_integer_out_of_range",
                    f"integers must be within ±{MAX_SAFE_INTEGER} (2^53 - 1); send larger ones as strings",
                    path,
                )
        elif isinstance(v, float):
            if math.isnan(v) or math.isinf(v):
                raise UnsafeJSON("json_invalid_number", "NaN and Infinity are not JSON numbers", path)


def find_bad_string(s: str) -> bool:
    """True if ``s`` holds a character no database text column takes (NUL, a lone surrogate)."""
    return _BAD_CHARS.search(s) is not None
