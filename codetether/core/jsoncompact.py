"""Compact JSON that JavaScript's ``JSON.stringify(JSON.parse(body))`` reproduces byte for byte.

Webhook receivers (the n8n Code node in particular) often re-serialise the parsed body and sign
that. Python's ``json.dumps`` differs from JavaScript in three places this module handles:
float formatting (``1.0`` vs ``1``, ``1e-05`` vs ``0.00001``), the order of integer-like object
keys (JavaScript puts them first, ascending) and escaping of lone surrogates.
"""

from __future__ import annotations

import math
import re
from typing import Any

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f\ud800-\udfff]')
_ARRAY_INDEX = re.compile(r"^(0|[1-9][0-9]*)$")
_MAX_SAFE_INTEGER = 2**53 - 1


def _escape_char(m: re.Match[str]) -> str:
    ch = m.group(0)
    return _ESCAPES.get(ch) or f"\\u{ord(ch):04x}"


def _string(s: str) -> str:
    return '"' + _NEEDS_ESCAPE.sub(_escape_char, s) + '"'


def js_number(x: float) -> str:
    """Formats a float the way ECMAScript's Number::toString does."""
    if math.isnan(x) or math.isinf(x):
        return "null"  # JSON.stringify turns these into null
    if x == 0:
        return "0"
    r = repr(x)
    mantissa, _, exp_s = r.partition("e")
    neg = mantissa.startswith("-")
    mantissa = mantissa.lstrip("-")
    int_part, _, frac = mantissa.partition(".")
    if frac == "0":
        frac = ""
    digits = (int_part + frac).lstrip("0")
    # Decimal exponent n such that value = 0.digits * 10^n
    exp = int(exp_s) if exp_s else 0
    lead_zeros = len(int_part + frac) - len((int_part + frac).lstrip("0"))
    n = len(int_part) + exp - lead_zeros
    digits = digits.rstrip("0") or "0"
    k = len(digits)
    if k <= n <= 21:
        out = digits + "0" * (n - k)
    elif 0 < n <= 21:
        out = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        sign = "+" if e >= 0 else "-"
        out = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + sign + str(abs(e))
    return ("-" if neg else "") + out


def _js_big_int(v: int) -> str:
    # JavaScript parses every number as a double: a larger integer comes back rounded, and
    # JSON.stringify prints that double (shortest digits, zero padded or in exponent form).
    try:
        return js_number(float(v))
    except OverflowError:
        return "null"  # JSON.parse gives Infinity, which JSON.stringify writes as null


def _key_order(obj: dict[str, Any]) -> list[str]:
    index_keys = [k for k in obj if _ARRAY_INDEX.match(k) and int(k) < 2**32 - 1]
    if not index_keys:
        return list(obj)
    rest = [k for k in obj if k not in set(index_keys)]
    return sorted(index_keys, key=int) + rest


def dumps(value: Any) -> str:
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts)


def _write(v: Any, out: list[str]) -> None:
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, str):
        out.append(_string(v))
    elif isinstance(v, int):
        out.append(str(v) if abs(v) <= _MAX_SAFE_INTEGER else _js_big_int(v))
    elif isinstance(v, float):
        out.append(js_number(v))
    elif isinstance(v, dict):
        out.append("{")
        first = True
        for k in _key_order(v):
            if not first:
                out.append(",")
            first = False
            out.append(_string(str(k)))
            out.append(":")
            _write(v[k], out)
        out.append("}")
    elif isinstance(v, (list, tuple)):
        out.append("[")
        for i, item in enumerate(v):
            if i:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot serialise {type(v).__name__} to JSON")
