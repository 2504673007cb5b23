"""The workflows the n8n end-to-end tests import (one `n8n import:workflow --separate` for all):
the package's templates, adapted only where n8n's CLI or the offline machine needs it."""

from __future__ import annotations

import json

from .harness import template

CT = "n8n-nodes-codetether.codeTether"
CT_TRIGGER = "n8n-nodes-codetether.codeTetherTrigger"

CREATE_AND_POLL = "ctCreateAndPoll01"
ANSWER_QUESTION = "ctAnswerQuestion1"
GMAIL_TEMPLATE = "ctGmailTemplate01"
GMAIL_OFFLINE = "ctGmailOffline001"
TRIGGER = "ctTriggerForward1"
CALLBACK = "ctWebhookCallbk1"
STRUCTURED = "ctStructuredOut1"
CANCEL_MANY = "ctCancelByTag001"
TRIGGER_TAGGED = "ctTriggerTagged1"

TRIGGER_WEBHOOK_ID = "0b7c1d2e-3f40-4a51-8b62-7c8d9e0f1a2b"
TRIGGER_TAGGED_WEBHOOK_ID = "4c5d6e7f-8091-4a2b-9c3d-4e5f60718293"
CALLBACK_START_PATH = "codetether-callback-e2e"

# Three typed fields; the offline demo model answers with the first enum value, the minimum and true.
OUTPUT_SCHEMA = {
    "type": "object",
    "properties": {
        "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
        "priority": {"type": "integer", "minimum": 1, "maximum": 5},
        "needs_reply": {"type": "boolean"},
    },
    "required": ["sentiment", "priority", "needs_reply"],
    "additionalProperties": False,
}
STRUCTURED_TAG = "n8n-e2e:structured"
CANCEL_TAG = "n8n-e2e:bulk"
TRIGGER_TAG = "n8n-e2e:trigger"


def _node(name: str, type_: str, version: float, params: dict, n: int, **extra) -> dict:
    return {"parameters": params, "name": name, "type": type_, "typeVersion": version,
            "position": [220 * n, 0], "id": f"00000000-0000-4000-8000-{n:012d}", **extra}


MANUAL = _node("Start", "n8n-nodes-base.manualTrigger", 1, {}, 90)


def _chain(names: list[str]) -> dict:
    return {a: {"main": [[{"node": b, "type": "main", "index": 0}]]} for a, b in zip(names, names[1:])}


def _forward(name: str, sink_url: str, body: str, n: int) -> dict:
    return _node(name, "n8n-nodes-base.httpRequest", 4.2, {
        "method": "POST", "url": sink_url, "sendBody": True, "specifyBody": "json",
        "jsonBody": body, "options": {}}, n)


def _replace(workflow: dict, old: str, new: dict) -> dict:
    workflow["nodes"] = [new if node["name"] == old else node for node in workflow["nodes"]]
    workflow["connections"][new["name"]] = workflow["connections"].pop(old)
    return workflow


def all_workflows(sink_url: str) -> dict[str, dict]:
    out: dict[str, dict] = {}

    # The schedule template with a manual start (`n8n execute` runs manual-trigger workflows).
    out[CREATE_AND_POLL] = _replace(template("create-and-poll.json"), "Every Hour", MANUAL)

    nodes = [
        MANUAL,
        _node("Create Task", CT, 1, {"resource": "task", "operation": "create", "title": "Pick a colour",
                                     "description": "ASK: Which colour should the banner be?"}, 1),
        _node("Wait for Question", CT, 1, {"resource": "task", "operation": "waitForCompletion",
                                           "taskId": "={{ $json.task_id }}", "timeout": 60}, 2),
        _node("Answer Question", CT, 1, {"resource": "task", "operation": "answer",
                                         "taskId": "={{ $json.task_id }}", "message": "Teal, please."}, 3),
        _node("Wait for Result", CT, 1, {"resource": "task", "operation": "waitForCompletion",
                                         "taskId": "={{ $json.task_id }}", "timeout": 60}, 4),
    ]
    out[ANSWER_QUESTION] = {"name": "answer a question", "nodes": nodes,
                            "connections": _chain([n["name"] for n in nodes]), "settings": {"executionOrder": "v1"}}

    out[GMAIL_TEMPLATE] = template("gmail-analysis-to-slack.json")
    # Its CodeTether nodes for real: a sample email instead of the Gmail trigger, no Slack post.
    offline = template("gmail-analysis-to-slack.json")
    sample = _node("New Email", "n8n-nodes-base.set", 3.4, {"mode": "raw", "options": {}, "jsonOutput": json.dumps({
        "id": "18c0ffee", "From": "ada@example.com", "Subject": "Invoice overdue",
        "snippet": "Hi, our invoice 42 is two weeks overdue. Can you check?"})}, 91)
    offline["nodes"] = [sample if n["name"] == "New Email" else n for n in offline["nodes"] if n["name"] != "Post to Slack"]
    offline["nodes"].append(MANUAL)
    offline["connections"]["Start"] = {"main": [[{"node": "New Email", "type": "main", "index": 0}]]}
    del offline["connections"]["Wait for Analysis"]
    out[GMAIL_OFFLINE] = offline

    trigger = [
        _node("CodeTether Trigger", CT_TRIGGER, 1, {"events": ["task.completed"]}, 1, webhookId=TRIGGER_WEBHOOK_ID),
        _forward("Forward", sink_url, "={{ JSON.stringify({ via: 'trigger', event: $json }) }}", 2),
    ]
    out[TRIGGER] = {"name": "trigger forwards task.completed", "nodes": trigger,
                    "connections": _chain([n["name"] for n in trigger]), "settings": {"executionOrder": "v1"}}

    # Output Schema and Tags on create; the result's fields are item fields under result_json
    # (a Set node maps them as any later node would); Get Many filters by the tag.
    nodes = [
        MANUAL,
        _node("Create Task", CT, 1, {"resource": "task", "operation": "create", "title": "Triage feedback",
                                     "description": "Classify: the app is slow but lovely",
                                     "additionalFields": {"outputSchema": json.dumps(OUTPUT_SCHEMA),
                                                          "tags": f"{STRUCTURED_TAG}, feedback"}}, 1),
        _node("Wait for Result", CT, 1, {"resource": "task", "operation": "waitForCompletion",
                                         "taskId": "={{ $json.task_id }}", "timeout": 60}, 2),
        _node("Map Fields", "n8n-nodes-base.set", 3.4, {"mode": "raw", "options": {}, "jsonOutput": (
            "={{ JSON.stringify({ task_id: $json.task_id, sentiment: $json.result_json.sentiment, "
            "priority: $json.result_json.priority, needs_reply: $json.result_json.needs_reply }) }}")}, 3),
        _node("Find by Tag", CT, 1, {"resource": "task", "operation": "getAll", "returnAll": True,
                                     "filters": {"tags": f"{STRUCTURED_TAG},feedback"}}, 4),
    ]
    out[STRUCTURED] = {"name": "structured output and tags", "nodes": nodes,
                       "connections": _chain([n["name"] for n in nodes]), "settings": {"executionOrder": "v1"}}

    # Two tagged tasks parked on a question (so neither can finish); Cancel Many by that tag stops
    # both.
    nodes = [MANUAL]
    for n in (1, 2):
        nodes.append(_node(f"Create Task {n}", CT, 1, {"resource": "task", "operation": "create", "title": f"bulk {n}",
                                                      "description": "ASK: Shall I go on?",
                                                      "additionalFields": {"tags": CANCEL_TAG}}, 2 * n - 1))
        nodes.append(_node(f"Wait for Question {n}", CT, 1, {"resource": "task", "operation": "waitForCompletion",
                                                             "taskId": "={{ $json.task_id }}", "timeout": 60}, 2 * n))
    nodes.append(_node("Cancel by Tag", CT, 1, {"resource": "task", "operation": "cancelMany", "cancelBy": "filter",
                                                "cancelFilters": {"tags": CANCEL_TAG}}, 5))
    out[CANCEL_MANY] = {"name": "cancel many by tag", "nodes": nodes,
                        "connections": _chain([n["name"] for n in nodes]), "settings": {"executionOrder": "v1"}}

    tagged = [
        _node("CodeTether Trigger", CT_TRIGGER, 1, {"events": ["task.completed"], "tags": TRIGGER_TAG}, 1,
              webhookId=TRIGGER_TAGGED_WEBHOOK_ID),
        _forward("Forward", sink_url, "={{ JSON.stringify({ via: 'tagged-trigger', event: $json }) }}", 2),
    ]
    out[TRIGGER_TAGGED] = {"name": "trigger forwards tagged task.completed", "nodes": tagged,
                           "connections": _chain([n["name"] for n in tagged]), "settings": {"executionOrder": "v1"}}

    # The callback template, started by a webhook so it runs inside the n8n server, with its
    # result forwarded to the test.
    callback = _replace(template("webhook-callback.json"), "When Clicking Execute", _node(
        "Start by Webhook", "n8n-nodes-base.webhook", 2,
        {"httpMethod": "POST", "path": CALLBACK_START_PATH, "options": {}}, 92,
        webhookId="7d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"))
    callback["nodes"].append(_forward("Forward Result", sink_url,
                                      "={{ JSON.stringify({ via: 'callback', result: $json }) }}", 93))
    callback["connections"]["Result"] = {"main": [[{"node": "Forward Result", "type": "main", "index": 0}]]}
    callback["connections"]["Not Completed"] = {"main": [[{"node": "Forward Result", "type": "main", "index": 0}]]}
    out[CALLBACK] = callback
    return out
