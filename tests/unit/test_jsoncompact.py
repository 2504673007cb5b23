"""codetether.core.jsoncompact against JavaScript itself: ``JSON.stringify(JSON.parse(body))`` must give
back our bytes exactly (the n8n Code-node check). Node runs once over all cases when present;
the expected strings below are what Node printed, so the unit tests also run without it."""

from __future__ import annotations

import json
import math
import shutil
import subprocess

import pytest

from codetether.core.jsoncompact import dumps, js_number

CASES = [
    None,
    True,
    False,
    0,
    -0.0,
    1.0,
    -1.5,
    0.1,
    0.1 + 0.2,
    1e21,
    1e20,
    123456789012345678901234.0,
    1e-7,
    1e-6,
    0.000001234,
    5e-324,
    1.7976931348623157e308,
    2**53,
    2**53 - 1,
    2**53 + 1,
    2**60,
    12345678901234567890,
    10**21,
    10**400,
    -(10**22),
    123.456e5,
    "",
    "plain",
    'quote " and backslash \\',
    "control \x00\x01\x1f\b\f\n\r\t",
    "unicode: é ü 漢字 🎉",
    "separators: \u2028 \u2029",
    "lone surrogate: \ud800 and \udfff",
    "del \x7f and nbsp \u00a0",
    "</script>",
    [],
    {},
    [1, [2, [3, {"a": []}]]],
    {"b": 1, "a": 2, "10": "ten", "2": "two", "01": "zero-one", "-1": "neg", "4294967295": "max", "4294967294": "idx"},
    {"nested": {"z": {"y": [0.5, 1.0, {"1": True, "0": False}]}}, "": "empty key"},
    {"metadata": {"zap": {"id": 17, "score": 99.0}}, "result": "ok", "duration_seconds": 1.25},
]


def test_known_values():
    assert dumps({"a": 1.0, "b": [1e21, 1e-7, 0.000001]}) == '{"a":1,"b":[1e+21,1e-7,0.000001]}'
    assert dumps({"b": 1, "10": 2, "2": 3, "x": None}) == '{"2":3,"10":2,"b":1,"x":null}'
    assert dumps("\u2028") == '"\u2028"'
    assert dumps("\ud800") == '"\\ud800"'
    assert dumps("a\x1fb") == '"a\\u001fb"'
    assert dumps(-0.0) == "0"
    assert dumps(10**21) == "1e+21"
    # Integers beyond 2**53 come back from JSON.parse rounded to a double.
    assert dumps(2**53 - 1) == "9007199254740991"
    assert dumps(2**53 + 1) == "9007199254740992"
    assert dumps(2**60) == "1152921504606847000"
    assert dumps(10**400) == "null"
    assert js_number(0.1 + 0.2) == "0.30000000000000004"
    assert js_number(123.456e5) == "12345600"
    assert js_number(5e-324) == "5e-324"
    assert js_number(1.7976931348623157e308) == "1.7976931348623157e+308"
    assert js_number(math.nan) == "null" and js_number(math.inf) == "null"


def test_is_valid_json_and_round_trips():
    for value in CASES:
        text = dumps(value)
        assert "\n" not in text
        # Python parses it back to the same value (key order aside).
        parsed = json.loads(text)
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
            assert parsed is None if value > 1e308 else float(parsed) == float(value)
        elif not (isinstance(value, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in value)):
            assert parsed == value


def test_rejects_unserialisable():
    with pytest.raises(TypeError):
        dumps({"when": object()})


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_javascript_reproduces_every_body_byte_for_byte():
    bodies = [dumps(v) for v in CASES]
    script = (
        "const bodies = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "process.stdout.write(JSON.stringify(bodies.map(b => JSON.stringify(JSON.parse(b)))));"
    )
    # The bodies travel as a JSON array of strings; ensure_ascii keeps lone surrogates intact.
    proc = subprocess.run(
        ["node", "-e", script], input=json.dumps(bodies).encode(), capture_output=True, timeout=60, check=True
    )
    from_js = json.loads(proc.stdout.decode("utf-8", "surrogatepass"))
    for value, ours, theirs in zip(CASES, bodies, from_js, strict=True):
        assert ours == theirs, f"{value!r}: ours {ours!r} != JavaScript {theirs!r}"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_javascript_agrees_on_many_floats():
    import random

    rng = random.Random(20261123)
    values = [rng.uniform(-1e6, 1e6) for _ in range(300)]
    values += [rng.random() * 10 ** rng.randint(-30, 30) for _ in range(300)]
    values += [float(rng.randint(-(2**60), 2**60)) for _ in range(100)]
    ours = dumps(values)
    proc = subprocess.run(
        ["node", "-e", "process.stdout.write(JSON.stringify(JSON.parse(require('fs').readFileSync(0,'utf8'))))"],
        input=ours.encode(), capture_output=True, timeout=60, check=True,
    )
    assert proc.stdout.decode() == ours
