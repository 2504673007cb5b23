"""The packed `n8n-nodes-codetether` in a real n8n 2.41, run with `n8n execute` against
`codetether dev`: the create-and-poll template, a question answered by an Answer Question node,
and the Gmail → Slack template's CodeTether nodes (Gmail and Slack cannot run offline).
"""

from __future__ import annotations

import json

import pytest

from .harness import PACKAGE_DIR, CodeTether, N8n, Toolchain, template, wait_until
from .workflows import (ANSWER_QUESTION, CANCEL_MANY, CANCEL_TAG, CREATE_AND_POLL, GMAIL_OFFLINE, OUTPUT_SCHEMA,
                        STRUCTURED, STRUCTURED_TAG)


def node_output(run: dict, name: str) -> list[dict]:
    """The JSON items the last run of node `name` produced (n8n's IRun shape)."""
    runs = run["data"]["resultData"]["runData"][name]
    return [item["json"] for item in runs[-1]["data"]["main"][0]]


def test_packed_tarball_installs_both_nodes_under_the_package_name(n8n: N8n) -> None:
    installed = n8n.home / ".n8n" / "nodes" / "node_modules" / "n8n-nodes-codetether"
    manifest = json.loads((installed / "package.json").read_text())
    assert manifest["name"] == "n8n-nodes-codetether"
    assert manifest.get("dependencies", {}) == {}
    for path in manifest["n8n"]["nodes"] + manifest["n8n"]["credentials"]:
        assert (installed / path).is_file(), path
    # No sources, tests or templates in what users download: only the built package.
    assert not (installed / "nodes").exists() and not (installed / "test").exists()


def test_create_and_poll_template_runs_to_completed(n8n: N8n, codetether: CodeTether) -> None:
    run = n8n.execute(CREATE_AND_POLL)

    created = node_output(run, "Create Task")[0]
    assert created["task_id"].startswith("task_") and created["status"] == "queued"
    assert created["metadata"] == {"source": "n8n-schedule"}
    result = node_output(run, "Result")[0]
    assert result["task_id"] == created["task_id"]
    assert result["status"] == "completed"
    assert "Summarize customer feedback" in result["result_summary"]
    with codetether.client() as api:
        assert api.get(f"/v1/automation/tasks/{created['task_id']}").json()["status"] == "completed"


def test_question_is_answered_by_an_answer_question_node(n8n: N8n, codetether: CodeTether) -> None:
    run = n8n.execute(ANSWER_QUESTION)

    asked = node_output(run, "Wait for Question")[0]
    assert asked["status"] == "needs_input"
    assert asked["required_action"]["prompt"] == "Which colour should the banner be?"
    done = node_output(run, "Wait for Result")[0]
    assert done["task_id"] == asked["task_id"]
    assert done["status"] == "completed", done
    with codetether.client() as api:
        events = api.get(f"/v1/automation/tasks/{asked['task_id']}/events").json()["data"]
    kinds = [e["event"] for e in events]
    assert "task.needs_input" in kinds and kinds[-1] == "task.completed"


@pytest.mark.parametrize("name", ["create-and-poll.json", "webhook-callback.json", "gmail-analysis-to-slack.json"])
def test_templates_use_node_types_and_versions_that_exist_in_n8n_2_41(name: str, toolchain: Toolchain) -> None:
    nodes_json = toolchain.n8n.parent.parent / "n8n-nodes-base" / "dist" / "types" / "nodes.json"
    known: dict[str, set] = {}
    for desc in json.loads(nodes_json.read_text()):
        versions = desc["version"] if isinstance(desc["version"], list) else [desc["version"]]
        known.setdefault(desc["name"], set()).update(versions)
    ours = json.loads((PACKAGE_DIR / "package.json").read_text())["name"]
    for node in template(name)["nodes"]:
        if node["type"].startswith("n8n-nodes-codetether."):
            assert node["type"] in {f"{ours}.codeTether", f"{ours}.codeTetherTrigger"}
            assert node["typeVersion"] == 1
        else:
            assert node["type"].startswith("n8n-nodes-base."), node["type"]
            assert node["typeVersion"] in known[node["type"].removeprefix("n8n-nodes-base.")], node["type"]
        assert "credentials" not in node, "templates carry no credential ids"


def test_gmail_to_slack_template_imports_and_its_codetether_nodes_run(n8n: N8n) -> None:
    # The template itself was imported with the others (the n8n fixture); its CodeTether nodes
    # run for real with a sample email in place of the Gmail trigger and without the Slack post
    # (both need Google's and Slack's servers).
    run = n8n.execute(GMAIL_OFFLINE)
    created = node_output(run, "Analyze Email")[0]
    assert created["title"] == "Analyze email: Invoice overdue"
    assert created["metadata"] == {"gmail_message_id": "18c0ffee"}
    assert node_output(run, "Wait for Analysis")[0]["status"] == "completed"


def test_output_schema_fields_come_out_as_item_fields_and_tags_filter_the_list(n8n: N8n, codetether: CodeTether) -> None:
    run = n8n.execute(STRUCTURED)

    created = node_output(run, "Create Task")[0]
    assert created["output_schema"] == OUTPUT_SCHEMA
    assert created["tags"] == [STRUCTURED_TAG, "feedback"]
    done = node_output(run, "Wait for Result")[0]
    assert done["status"] == "completed", done
    # The answer, valid against the three-field schema, is an object on the item.
    assert done["result_json"] == {"sentiment": "positive", "priority": 1, "needs_reply": True}
    # ... whose fields a later node maps by name, with their JSON types.
    mapped = node_output(run, "Map Fields")[0]
    assert mapped == {"task_id": created["task_id"], "sentiment": "positive", "priority": 1, "needs_reply": True}
    # Get Many with the tags finds the task (and only tasks having both tags).
    found = node_output(run, "Find by Tag")
    assert created["task_id"] in [t["task_id"] for t in found]
    assert all({STRUCTURED_TAG, "feedback"} <= set(t["tags"]) for t in found)
    with codetether.client() as api:
        assert api.get(f"/v1/automation/tasks/{created['task_id']}").json()["result_json"] == done["result_json"]


def test_cancel_many_cancels_every_task_with_the_tag(n8n: N8n, codetether: CodeTether) -> None:
    run = n8n.execute(CANCEL_MANY)

    ids = {node_output(run, f"Create Task {n}")[0]["task_id"] for n in (1, 2)}
    assert all(node_output(run, f"Wait for Question {n}")[0]["status"] == "needs_input" for n in (1, 2))
    outcome = node_output(run, "Cancel by Tag")
    assert len(outcome) == 1, "one item for the whole bulk cancel"
    assert ids <= set(outcome[0]["cancelled"]), outcome
    # The cancellation is durable but asynchronous: the tasks reach `cancelled` shortly after.
    with codetether.client() as api:
        for task_id in ids:
            wait_until(lambda: api.get(f"/v1/automation/tasks/{task_id}").json()["status"] == "cancelled", 30,
                       f"{task_id} to be cancelled")
