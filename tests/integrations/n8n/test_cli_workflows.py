"""The packed `n8n-nodes-codetether` in a real n8n 2.41, run with `n8n execute` against
`codetether dev`: the create-and-poll template, a question answered by an Answer Question node,
and the Gmail → Slack template's CodeTether nodes (Gmail and Slack cannot run offline).
"""

from __future__ import annotations

import json

from .harness import N8n, CodeTether, PACKAGE_DIR, template

MANUAL = {"parameters": {}, "name": "Start", "type": "n8n-nodes-base.manualTrigger", "typeVersion": 1,
          "position": [0, 0], "id": "00000000-0000-4000-8000-0000000000aa"}


def node_output(run: dict, name: str) -> list[dict]:
    """The JSON items the last run of node `name` produced (n8n's IRun shape)."""
    runs = run["data"]["resultData"]["runData"][name]
    return [item["json"] for item in runs[-1]["data"]["main"][0]]


def replace_trigger(workflow: dict, old: str, new: dict) -> dict:
    workflow["nodes"] = [new if n["name"] == old else n for n in workflow["nodes"]]
    workflow["connections"][new["name"]] = workflow["connections"].pop(old)
    return workflow


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
    wf = replace_trigger(template("create-and-poll.json"), "Every Hour", MANUAL)
    n8n.import_workflow(wf, "ctCreateAndPoll01")
    run = n8n.execute("ctCreateAndPoll01")

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
    ct = "n8n-nodes-codetether.codeTether"
    nodes = [
        MANUAL,
        {"parameters": {"resource": "task", "operation": "create", "title": "Pick a colour",
                        "description": "ASK: Which colour should the banner be?"},
         "name": "Create Task", "type": ct, "typeVersion": 1, "position": [200, 0], "id": "00000000-0000-4000-8000-000000000001"},
        {"parameters": {"resource": "task", "operation": "waitForCompletion", "taskId": "={{ $json.task_id }}", "timeout": 60},
         "name": "Wait for Question", "type": ct, "typeVersion": 1, "position": [400, 0], "id": "00000000-0000-4000-8000-000000000002"},
        {"parameters": {"resource": "task", "operation": "answer", "taskId": "={{ $json.task_id }}", "message": "Teal, please."},
         "name": "Answer Question", "type": ct, "typeVersion": 1, "position": [600, 0], "id": "00000000-0000-4000-8000-000000000003"},
        {"parameters": {"resource": "task", "operation": "waitForCompletion", "taskId": "={{ $json.task_id }}", "timeout": 60},
         "name": "Wait for Result", "type": ct, "typeVersion": 1, "position": [800, 0], "id": "00000000-0000-4000-8000-000000000004"},
    ]
    chain = ["Start", "Create Task", "Wait for Question", "Answer Question", "Wait for Result"]
    connections = {a: {"main": [[{"node": b, "type": "main", "index": 0}]]} for a, b in zip(chain, chain[1:])}
    n8n.import_workflow({"name": "answer a question", "nodes": nodes, "connections": connections,
                         "settings": {"executionOrder": "v1"}, "active": False}, "ctAnswerQuestion1")
    run = n8n.execute("ctAnswerQuestion1")

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


def test_gmail_to_slack_template_imports_and_its_codetether_nodes_run(n8n: N8n) -> None:
    original = template("gmail-analysis-to-slack.json")
    # Every node type and typeVersion in the template exists in this n8n.
    base = json.loads((n8n.tools.n8n.parent.parent / "n8n-nodes-base" / "dist" / "types" / "nodes.json").read_text())
    known: dict[str, set] = {}
    for desc in base:
        versions = desc["version"] if isinstance(desc["version"], list) else [desc["version"]]
        known.setdefault(desc["name"], set()).update(versions)
    ours = json.loads((PACKAGE_DIR / "package.json").read_text())["name"]
    for node in original["nodes"]:
        if node["type"].startswith(ours + "."):
            assert node["typeVersion"] == 1
        else:
            assert node["typeVersion"] in known[node["type"].replace("n8n-nodes-base.", "")], node["type"]
        assert "credentials" not in node, "templates carry no credential ids"
    n8n.import_workflow(original, "ctGmailTemplate01")
    exported = json.loads(n8n.cli("export:workflow", "--id=ctGmailTemplate01").stdout[
        n8n.cli("export:workflow", "--id=ctGmailTemplate01").stdout.find("["):])[0]
    assert {n["name"] for n in exported["nodes"]} == {n["name"] for n in original["nodes"]}

    # The CodeTether nodes run for real with a sample email in place of the Gmail trigger and
    # without the Slack post (both need Google's and Slack's servers).
    wf = json.loads(json.dumps(original))
    sample = {"parameters": {"mode": "raw", "jsonOutput": json.dumps({
        "id": "18c0ffee", "From": "ada@example.com", "Subject": "Invoice overdue",
        "snippet": "Hi, our invoice 42 is two weeks overdue. Can you check?"}), "options": {}},
        "name": "New Email", "type": "n8n-nodes-base.set", "typeVersion": 3.4, "position": [0, 0],
        "id": "00000000-0000-4000-8000-0000000000bb"}
    wf["nodes"] = [sample if n["name"] == "New Email" else n for n in wf["nodes"] if n["name"] != "Post to Slack"]
    wf["nodes"].append(MANUAL)
    wf["connections"]["Start"] = {"main": [[{"node": "New Email", "type": "main", "index": 0}]]}
    del wf["connections"]["Wait for Analysis"]
    n8n.import_workflow(wf, "ctGmailOffline001")
    run = n8n.execute("ctGmailOffline001")
    created = node_output(run, "Analyze Email")[0]
    assert created["title"] == "Analyze email: Invoice overdue"
    assert created["metadata"] == {"gmail_message_id": "18c0ffee"}
    assert node_output(run, "Wait for Analysis")[0]["status"] == "completed"
