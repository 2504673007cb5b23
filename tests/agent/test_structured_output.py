"""Structured output end to end (CONTRACT §11): ``output_schema`` on create, the model's
``submit_result`` checked against it, ``result_json`` on the task and in the webhook payload,
corrections after an invalid answer and ``output_invalid`` after the third.

The demo model answers a structured task with an object built from the schema; its ``TOOL:
submit_result {...}`` lines submit objects of the test's choosing first.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from codetether.agent.transcript import read_messages
from codetether.agent.structured import answer_problems, example_for, json_answer, schema_problem
from tests.conftest import wait_status
from tests.support.receiver import Receiver

TASKS = "/v1/automation/tasks"
SCHEMA = {
    "type": "object",
    "properties": {
        "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
        "priority": {"type": "integer", "minimum": 1, "maximum": 5},
        "needs_reply": {"type": "boolean"},
    },
    "required": ["sentiment", "priority", "needs_reply"],
    "additionalProperties": False,
}


def problem(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.json()["code"] == code, r.json()
    return r.json()


async def test_three_typed_fields_come_back_as_result_json_on_the_task_and_the_webhook(stack, user):
    async with Receiver() as hook:
        r = await stack.http.post(TASKS, json={"title": "Triage", "description": "Classify: the app is slow but lovely",
                                               "output_schema": SCHEMA, "webhook_url": hook.url}, headers=user.headers)
        assert r.status_code == 201, r.text
        created = r.json()
        assert created["output_schema"] == SCHEMA and created["result_json"] is None
        done = await wait_status(stack.http, created["task_id"], user.headers, {"completed", "failed"})
        assert done["status"] == "completed", done
        assert done["result_json"] == {"sentiment": "positive", "priority": 1, "needs_reply": True}
        assert answer_problems(SCHEMA, done["result_json"]) == []
        assert done["result"]  # the text form stays for text-only steps
        for _ in range(100):
            if hook.requests:
                break
            await asyncio.sleep(0.1)
        payload = json.loads(hook.requests[-1].body)
        assert payload["event"] == "task.completed"
        assert payload["result_json"] == done["result_json"]
        assert payload["data"]["result_json"] == done["result_json"]


async def test_invalid_answers_go_back_to_the_model_then_it_corrects_them(stack, user, db):
    bad = json.dumps({"sentiment": "angry", "priority": 9, "needs_reply": True})
    r = await stack.http.post(TASKS, json={"title": "Triage", "output_schema": SCHEMA,
                                           "description": f"TOOL: submit_result {bad}\nTOOL: submit_result {{}}"},
                              headers=user.headers)
    task_id = r.json()["task_id"]
    done = await wait_status(stack.http, task_id, user.headers, {"completed", "failed"})
    assert done["status"] == "completed", done
    assert answer_problems(SCHEMA, done["result_json"]) == []
    # What the model was told: both invalid submissions came back with what was wrong.
    told = [m.content for m in await read_messages(db, done["run_id"]) if m.role == "tool"]
    assert len(told) == 2
    assert "does not match the output schema" in told[0] and "'angry' is not one of" in told[0]
    assert "9 is greater than the maximum of 5" in told[0]
    assert "'sentiment' is a required property" in told[1]


async def test_the_third_invalid_answer_fails_the_task_with_output_invalid(stack, user):
    bad = json.dumps({"sentiment": "angry"})
    lines = "\n".join(f"TOOL: submit_result {bad}" for _ in range(3))
    r = await stack.http.post(TASKS, json={"title": "Triage", "output_schema": SCHEMA, "description": lines},
                              headers=user.headers)
    done = await wait_status(stack.http, r.json()["task_id"], user.headers, {"completed", "failed"})
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "output_invalid"
    assert "sentiment" in done["error"]["message"]
    assert done["result_json"] is None


async def test_without_output_schema_result_json_is_null(stack, user):
    r = await stack.http.post(TASKS, json={"title": "Plain", "description": "Summarize"}, headers=user.headers)
    done = await wait_status(stack.http, r.json()["task_id"], user.headers, {"completed", "failed"})
    assert done["status"] == "completed" and done["result_json"] is None and done["output_schema"] is None


@pytest.mark.parametrize("schema", [
    {"type": "array"},
    {"properties": {}},
    {"type": "object", "properties": {"a": {"type": "strnig"}}},
    {"type": "object", "properties": {"a": {"$ref": "https://example.com/x.json"}}},
    {"type": "object", "description": "x" * 17000},
    [],
])
async def test_bad_output_schemas_are_refused(stack, user, schema):
    r = await stack.http.post(TASKS, json={"title": "t", "description": "d", "output_schema": schema}, headers=user.headers)
    assert r.status_code == 422, r.text
    assert r.json()["code"] in ("invalid_output_schema", "validation_error")
    assert (await stack.http.get(TASKS, headers=user.headers)).json()["data"] == []


def test_schema_rules_and_examples():
    assert schema_problem(SCHEMA) is None
    assert "root" in schema_problem({"type": "array"})
    assert schema_problem({"type": "object", "$defs": {"p": {"type": "integer"}}, "properties": {"p": {"$ref": "#/$defs/p"}}}) is None
    nested = {"type": "object", "properties": {
        "items": {"type": "array", "minItems": 2, "items": {"type": "object", "properties": {"at": {"type": "string", "format": "date-time"}},
                                                             "required": ["at"]}},
        "score": {"type": "number", "exclusiveMinimum": 0}, "tag": {"anyOf": [{"type": "null"}, {"type": "string", "minLength": 6}]}}}
    assert answer_problems(nested, example_for(nested)) == []
    assert json_answer('```json\n{"a": 1}\n```') == {"a": 1}
    assert json_answer("The answer is {}") is None
