"""Finding 2: a task that could be written but never read.

Deeply nested ``metadata`` was accepted, the task created and started, and every later read of it
(and of list pages holding it) answered 500. NaN/Infinity were stored as null, integers past 2^53
broke JavaScript re-serialisation, NUL broke PostgreSQL. Each is now a 422 with its own ``code``
before anything is written, and everything accepted reads back exactly.
"""

from __future__ import annotations

import json

import pytest

TASKS = "/v1/automation/tasks"


def nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


async def task_count(http, headers) -> int:
    count, cursor = 0, None
    while True:
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        r = await http.get(TASKS, params=params, headers=headers)
        assert r.status_code == 200, r.text
        count += len(r.json()["data"])
        cursor = r.json()["next_cursor"]
        if not cursor:
            return count


def raw_create(metadata_json: str, **fields) -> bytes:
    body = {"title": "Meta", "description": "d", **fields}
    text = json.dumps(body)
    return (text[:-1] + ', "metadata": ' + metadata_json + "}").encode()


BAD = [
    ("depth 256", json.dumps(nested(256)), "json_too_deep"),
    ("depth 33", json.dumps(nested(33)), "json_too_deep"),
    ("array depth", "[" * 40 + "]" * 40, "json_too_deep"),
    ("NaN", '{"x": NaN}', "json_invalid_number"),
    ("Infinity", '{"x": [1, Infinity]}', "json_invalid_number"),
    ("-Infinity", '{"x": {"y": -Infinity}}', "json_invalid_number"),
    ("2^60", '{"x": 1152921504606846976}', "json_integer_out_of_range"),
    ("-2^60", '{"x": [-1152921504606846976]}', "json_integer_out_of_range"),
    ("NUL in a value", '{"x": "a\\u0000b"}', "json_invalid_string"),
    ("NUL in a key", '{"a\\u0000": 1}', "json_invalid_string"),
    ("lone surrogate", '{"x": "\\ud800"}', "json_invalid_string"),
]


@pytest.mark.parametrize("label,metadata,code", BAD, ids=[b[0] for b in BAD])
async def test_unstorable_metadata_is_refused_before_anything_is_written(stack, user, label, metadata, code):
    before = await task_count(stack.http, user.headers)
    body = raw_create(metadata if not metadata.startswith("[") else json.dumps({"a": json.loads(metadata)}))
    r = await stack.http.post(TASKS, content=body, headers={**user.headers, "Content-Type": "application/json"})
    assert r.status_code == 422, (label, r.status_code, r.text[:300])
    assert r.json()["code"] == code
    assert await task_count(stack.http, user.headers) == before


async def test_nul_in_title_or_description_is_refused(stack, user):
    for field in ("title", "description"):
        body = {"title": "t", "description": "d", field: "bad\x00value"}
        r = await stack.http.post(TASKS, json=body, headers=user.headers)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "json_invalid_string"


async def test_everything_accepted_reads_back_exactly(stack, user):
    metadata = {
        "deep": nested(31),
        "max": 2**53 - 1,
        "min": -(2**53 - 1),
        "float": 1.5e300,
        "tiny": 5e-324,
        "text": "tab\there, newline\n, unicode ☃ \U0001f600",
        "list": [None, True, False, 0, -0.0, ""],
    }
    r = await stack.http.post(TASKS, json={"title": "Meta ok", "description": "d", "metadata": metadata},
                              headers=user.headers)
    assert r.status_code == 201, r.text
    task = r.json()
    assert task["metadata"] == metadata
    got = await stack.http.get(f"{TASKS}/{task['task_id']}", headers=user.headers)
    assert got.status_code == 200 and got.json()["metadata"] == metadata
    listed = await stack.http.get(TASKS, headers=user.headers)
    assert listed.status_code == 200
    assert next(t for t in listed.json()["data"] if t["task_id"] == task["task_id"])["metadata"] == metadata
