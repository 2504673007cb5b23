"""The tool loop with real provider backends against the scripted OpenAI-compatible and
Anthropic servers: tools by their contract names, per-type tool sets, refused calls, ask_user mid
loop, the plan agent's read-only workspace, capped outputs, push and pull requests."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.agent.repos import git, make_bare_repo, register_codebase
from tests.conftest import wait_status
from tests.support.providers import anthropic_server, openai_server, provider_env, provider_stack  # noqa: F401
from tests.support.scripted_http import ScriptedServer

TASKS = "/v1/automation/tasks"


@pytest.fixture(autouse=True)
def _local_repos(settings):
    settings.codebase_allow_local = True
    settings.codebase_key = "kT5sV0b1yQm1C3n2aB9qK8x7Zr4tW6pLhJ0dF2gS1eE="


async def _task(stack, user, **body) -> dict:
    r = await stack.http.post(TASKS, json={"title": "Agent task", "description": "Do it", **body}, headers=user.headers)
    assert r.status_code == 201, r.text
    return await wait_status(stack.http, r.json()["task_id"], user.headers, {"completed", "failed", "needs_input"}, timeout=120)


def _tool_names(request) -> list[str]:
    tools = request.body.get("tools") or []
    return sorted(t["function"]["name"] if "function" in t else t["name"] for t in tools)


def _tree_digest(path: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(path)).encode() + p.read_bytes())
    return h.hexdigest()


async def test_openai_build_reads_edits_runs_and_pushes_a_branch(provider_stack, openai_server, user, tmp_path):
    bare, base = make_bare_repo(tmp_path)
    cb = await register_codebase(provider_stack, user, str(bare), push="branch")
    srv = openai_server
    srv.reply_tool_call("read", {"filePath": "app.py"})
    srv.reply_tool_call("grep", {"pattern": "greet", "include": "*.py"})
    srv.reply_tool_call("edit", {"filePath": "app.py", "oldString": "'hello'", "newString": "'hi'"})
    srv.reply_tool_call("bash", {"command": "python3 -c 'import app; print(app.greet())' && echo done >> log.txt"})
    srv.reply_tool_call("teleport", {"where": "mars"})
    srv.reply_text("Changed the greeting to hi.")
    task = await _task(provider_stack, user, model="gpt-4o", agent_type="build", codebase_id=cb)
    assert task["status"] == "completed", task
    chats = srv.chat_requests()
    assert _tool_names(chats[0]) == sorted(["read", "glob", "grep", "edit", "write", "bash", "todowrite", "ask_user"])
    tool_msgs = [m for m in chats[-1].body["messages"] if m["role"] == "tool"]
    assert tool_msgs[0]["content"].startswith("1: def greet():")
    assert "app.py:1: def greet():" in tool_msgs[1]["content"]
    assert tool_msgs[2]["content"].startswith("edited app.py")
    assert "hi" in tool_msgs[3]["content"] and "exit code 0" in tool_msgs[3]["content"]
    assert tool_msgs[4]["content"].startswith("error:") and "teleport" in tool_msgs[4]["content"]
    assert {f["path"]: f["status"] for f in task["changes"]["files"]} == {"app.py": "modified", "log.txt": "added"}
    g = task["git"]
    assert g["pushed"] is True and g["branch"] == f"codetether/{task['task_id']}" and g["base_commit"] == base
    assert git("rev-parse", g["branch"], cwd=bare).strip() == g["commit"]
    assert "'hi'" in git("show", f"{g['branch']}:app.py", cwd=bare)
    assert git("rev-parse", "main", cwd=bare).strip() == base
    assert task["usage"]["turns"] == 6 and task["usage"]["tool_calls"] == 5


async def test_anthropic_twin_speaks_the_tools(provider_stack, anthropic_server, user, tmp_path):
    bare, _ = make_bare_repo(tmp_path)
    cb = await register_codebase(provider_stack, user, str(bare))
    anthropic_server.reply_tool_call("write", {"filePath": "docs/new.md", "content": "# New\n"})
    anthropic_server.reply_tool_call("glob", {"pattern": "**/*.md"})
    anthropic_server.reply_text("Added docs/new.md.")
    task = await _task(provider_stack, user, model="claude-sonnet-4", agent_type="general", codebase_id=cb)
    assert task["status"] == "completed", task
    reqs = [r for r in anthropic_server.requests if r.path.endswith("/messages")]
    assert "edit" in _tool_names(reqs[0]) and "bash" in _tool_names(reqs[0])
    last = reqs[-1].body["messages"]
    results = [b for m in last if m["role"] == "user" and isinstance(m["content"], list) for b in m["content"]
               if b.get("type") == "tool_result"]
    assert results[0]["content"].startswith("created docs/new.md")
    assert "docs/new.md" in results[1]["content"] and "README.md" in results[1]["content"]
    assert task["changes"]["files"] == [{"path": "docs/new.md", "status": "added", "additions": 1, "deletions": 0}]


async def test_plan_cannot_edit_and_the_workspace_stays_identical(provider_stack, openai_server, user, tmp_path):
    bare, base = make_bare_repo(tmp_path)
    cb = await register_codebase(provider_stack, user, str(bare))
    ws_root = provider_stack.settings.resolved_workspace_root
    srv = openai_server
    srv.reply_tool_call("edit", {"filePath": "app.py", "oldString": "hello", "newString": "bye"})
    srv.reply_tool_call("bash", {"command": "echo x > app.py; echo y > new.txt"})
    srv.reply_tool_call("write", {"filePath": "app.py", "content": "gone"})
    srv.reply_tool_call("write", {"filePath": "plan.md", "content": "# Plan\n1. Change greet\n"})
    srv.reply_text("The plan is in plan.md.")
    task = await _task(provider_stack, user, model="gpt-4o", agent_type="plan", codebase_id=cb)
    assert task["status"] == "completed", task
    chats = srv.chat_requests()
    assert _tool_names(chats[0]) == sorted(["read", "glob", "grep", "bash", "write", "todowrite", "ask_user"])
    tools = [m["content"] for m in chats[-1].body["messages"] if m["role"] == "tool"]
    assert tools[0].startswith("error:") and "edit" in tools[0]
    assert "Read-only file system" in tools[1]
    assert tools[2].startswith("error:") and "plan.md" in tools[2]
    assert tools[3].startswith("wrote plan.md")
    assert task["changes"] is None
    kinds = {a["kind"]: a for a in task["artifacts"]}
    assert "patch" not in kinds
    r = await provider_stack.http.get(kinds["plan"]["url"], headers=user.headers)
    assert r.text == "# Plan\n1. Change greet\n"
    assert kinds["plan"]["sha256"] == hashlib.sha256(r.content).hexdigest()
    assert git("rev-parse", "main", cwd=bare).strip() == base
    assert not (ws_root / task["task_id"]).exists()  # cleaned up


async def test_explore_is_offered_only_its_tools_and_returns_findings(provider_stack, openai_server, user, tmp_path):
    bare, _ = make_bare_repo(tmp_path)
    cb = await register_codebase(provider_stack, user, str(bare))
    openai_server.reply_tool_call("write", {"filePath": "x.txt", "content": "x"})
    openai_server.reply_text("greet() lives in app.py line 1.")
    task = await _task(provider_stack, user, model="gpt-4o", agent_type="explore", codebase_id=cb)
    assert task["status"] == "completed", task
    chats = openai_server.chat_requests()
    assert _tool_names(chats[0]) == sorted(["read", "glob", "grep", "bash", "ask_user"])
    assert [m for m in chats[-1].body["messages"] if m["role"] == "tool"][0]["content"].startswith("error:")
    findings = next(a for a in task["artifacts"] if a["kind"] == "findings")
    r = await provider_stack.http.get(findings["url"], headers=user.headers)
    assert r.text == "greet() lives in app.py line 1."


async def test_ask_user_mid_loop_then_finish(provider_stack, openai_server, user):
    srv = openai_server
    srv.reply_tool_call("write", {"filePath": "answer.txt", "content": "draft"})
    srv.reply_ask_user("Which color?")
    srv.reply_tool_call("edit", {"filePath": "answer.txt", "oldString": "draft", "newString": "blue"})
    srv.reply_text("Wrote blue.")
    task = await _task(provider_stack, user, model="gpt-4o", agent_type="build")
    assert task["status"] == "needs_input", task
    assert task["required_action"]["prompt"] == "Which color?"
    r = await provider_stack.http.post(f"{TASKS}/{task['task_id']}/input", json={"message": "blue"}, headers=user.headers)
    assert r.status_code in (200, 202), r.text
    done = await wait_status(provider_stack.http, task["task_id"], user.headers, {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed", done
    msgs = openai_server.chat_requests()[2].body["messages"]
    assert msgs[-1] == {"role": "tool", "tool_call_id": msgs[-2]["tool_calls"][0]["id"], "content": "blue"}
    # a scratch workspace: changes but no git publication
    assert done["changes"]["files"] == [{"path": "answer.txt", "status": "added", "additions": 1, "deletions": 0}]
    assert done["git"] is None


async def test_large_output_is_capped_in_history_and_kept_whole(provider_stack, openai_server, user, temporal_env):
    srv = openai_server
    srv.reply_tool_call("bash", {"command": "python3 -c \"print('x' * 200000)\""})
    srv.reply_text("Printed a lot.")
    task = await _task(provider_stack, user, model="gpt-4o", agent_type="build")
    assert task["status"] == "completed", task
    sent = [m for m in srv.chat_requests()[1].body["messages"] if m["role"] == "tool"][0]["content"]
    cap = provider_stack.settings.agent_tool_output_cap
    assert len(sent) < cap + 500 and "output truncated" in sent
    out = next(a for a in task["artifacts"] if a["kind"] == "output")
    r = await provider_stack.http.get(out["url"], headers=user.headers)
    assert r.text.startswith("x" * 200000) and out["size"] == len(r.content) >= 200000
    history = await temporal_env.client.get_workflow_handle(task["task_id"]).fetch_history()
    assert len(history.to_json()) < 100_000


async def test_other_users_cannot_read_codebases_or_artifacts(stack, make_user, tmp_path):
    owner, other = await make_user(), await make_user()
    bare, _ = make_bare_repo(tmp_path)
    cb = await register_codebase(stack, owner, str(bare))
    r = await stack.http.post(TASKS, json={"title": "t", "description": "WRITE: a.txt :: a", "agent_type": "build",
                                           "codebase_id": cb}, headers=owner.headers)
    task = await wait_status(stack.http, r.json()["task_id"], owner.headers, {"completed", "failed"}, timeout=90)
    art = task["artifacts"][0]
    assert (await stack.http.get(art["url"], headers=owner.headers)).status_code == 200
    r = await stack.http.get(art["url"], headers=other.headers)
    assert r.status_code == 404 and r.json()["code"] == "artifact_not_found"
    assert (await stack.http.get(f"/v1/automation/codebases/{cb}", headers=other.headers)).status_code == 404
    r = await stack.http.get(f"{TASKS}/{task['task_id']}/artifacts/art_doesnotexist", headers=owner.headers)
    assert r.status_code == 404


class FakeGitHub(ScriptedServer):
    """Just enough of the GitHub REST API: create a pull request, list pull requests."""

    def build_app(self) -> Starlette:
        async def pulls(request: Request):
            self.record(request.url.path, await request.json() if request.method == "POST" else {}, dict(request.headers))
            if request.method == "POST":
                return JSONResponse({"number": 7, "html_url": "https://github.example/acme/web/pull/7"}, status_code=201)
            return JSONResponse([])

        return Starlette(routes=[Route("/repos/{owner}/{repo}/pulls", pulls, methods=["GET", "POST"])])


async def test_pull_request_policy_opens_a_pull_request(provider_stack, openai_server, user, tmp_path):
    with FakeGitHub() as gh:
        provider_stack.settings.github_api_url = gh.url
        bare, _ = make_bare_repo(tmp_path)
        r = await provider_stack.http.post("/v1/automation/codebases", json={
            "name": "web", "repository_url": str(bare), "ref": "main", "push": "pull_request",
            "credentials": {"type": "https_token", "token": "ghp_fake_token"}}, headers=user.headers)
        cb = r.json()["codebase_id"]
        openai_server.reply_tool_call("write", {"filePath": "CHANGELOG.md", "content": "- greet\n"})
        openai_server.reply_text("Added a changelog.")
        task = await _task(provider_stack, user, title="Add a changelog", model="gpt-4o", agent_type="build", codebase_id=cb)
        assert task["status"] == "completed", task
        assert task["git"]["pushed"] is True and task["git"]["pr_url"] == "https://github.example/acme/web/pull/7"
        req = gh.requests[0]
        assert req.path == "/repos/acme/web/pulls"
        assert req.body["head"] == f"codetether/{task['task_id']}" and req.body["base"] == "main"
        assert req.body["title"] == "Add a changelog"
        assert req.headers["authorization"] == "Bearer ghp_fake_token"
        # the token never landed in the pushed repository's config or the task
        assert "ghp_fake_token" not in json.dumps(task)
        assert "ghp_fake_token" not in (bare / "config").read_text()
