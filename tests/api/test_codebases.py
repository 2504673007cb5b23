"""``codetether codebases create/list`` registers codebases that the API lists and tasks can name."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from tests.conftest import wait_status


async def _cli(database_url: str, tmp_path, *args: str) -> tuple[int, str, str]:
    # Like the test stack, the CLI may name hosts that do not resolve offline.
    env = dict(os.environ, CODETETHER_DATABASE_URL=database_url, CODETETHER_DATA_DIR=str(tmp_path),
               CODETETHER_WEBHOOK_ALLOW_PRIVATE="true", CODETETHER_CODEBASE_ALLOW_LOCAL="true")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "codetether.cli", *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode, out.decode(), err.decode()


async def test_cli_codebase_is_listed_and_usable_on_task_create(stack, make_user, database_url, tmp_path):
    from tests.agent.repos import make_bare_repo

    owner = await make_user()
    other = await make_user()
    # A task really clones its codebase: a local repository stands in for the remote (offline).
    stack.settings.codebase_allow_local = True
    bare, _ = make_bare_repo(tmp_path / "remote", name="example/billing")
    repo_url = str(bare)

    code, out, err = await _cli(
        database_url, tmp_path, "codebases", "create", "--user", owner.email, "--name", "billing-service",
        "--repository-url", repo_url, "--description", "Invoices and payments",
    )
    assert code == 0, err
    created = json.loads(out)
    assert created["codebase_id"].startswith("cb_")
    assert created["name"] == "billing-service"
    assert created["repository_url"] == repo_url
    assert created["description"] == "Invoices and payments"
    assert created["user_id"] == owner.user_id
    assert created["created_at"].endswith("Z")

    code, out, err = await _cli(database_url, tmp_path, "codebases", "list", "--user", owner.email)
    assert code == 0, err
    assert [c["codebase_id"] for c in json.loads(out)] == [created["codebase_id"]]

    r = await stack.http.get("/v1/automation/codebases", headers=owner.headers)
    assert r.status_code == 200, r.text
    listed = r.json()["data"]
    assert [c["codebase_id"] for c in listed] == [created["codebase_id"]]
    assert listed[0]["id"] == created["codebase_id"]
    assert listed[0]["name"] == "billing-service"
    assert listed[0]["repository_url"] == repo_url
    assert listed[0]["description"] == "Invoices and payments"

    # the owner's tasks may name it ...
    r = await stack.http.post(
        "/v1/automation/tasks",
        json={"title": "Fix rounding", "description": "Round invoice totals", "model": "demo",
              "codebase_id": created["codebase_id"]},
        headers=owner.headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["codebase_id"] == created["codebase_id"]
    done = await wait_status(stack.http, r.json()["task_id"], owner.headers, {"completed", "failed"}, timeout=90)
    assert done["status"] == "completed" and done["codebase_id"] == created["codebase_id"]

    # ... another user neither sees it nor can use it
    r = await stack.http.get("/v1/automation/codebases", headers=other.headers)
    assert r.status_code == 200 and r.json()["data"] == []
    r = await stack.http.post(
        "/v1/automation/tasks",
        json={"title": "Sneak", "description": "x", "model": "demo", "codebase_id": created["codebase_id"]},
        headers=other.headers,
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "unknown_codebase"


async def test_cli_codebase_errors(database_url, tmp_path):
    code, _out, err = await _cli(database_url, tmp_path, "codebases", "create", "--user", "nobody@example.com", "--name", "x",
                                 "--repository-url", "https://github.com/example/x")
    assert code == 1 and "no user nobody@example.com" in err
    code, _out, err = await _cli(database_url, tmp_path, "codebases", "list", "--user", "nobody@example.com")
    assert code == 1 and "no user nobody@example.com" in err


async def test_codebase_crud_over_the_api(stack, make_user, db):
    from sqlalchemy import select

    from codetether.core.models import Codebase

    stack.settings.codebase_key = "kT5sV0b1yQm1C3n2aB9qK8x7Zr4tW6pLhJ0dF2gS1eE="
    owner = await make_user()
    other = await make_user()
    url = "/v1/automation/codebases"
    token = "ghp_secret_token_value_123"
    r = await stack.http.post(url, json={
        "name": "web", "repository_url": "https://github.com/acme/web.git", "ref": "main", "push": "branch",
        "credentials": {"type": "https_token", "token": token},
    }, headers=owner.headers)
    assert r.status_code == 201, r.text
    cb = r.json()
    assert cb["codebase_id"].startswith("cb_") and cb["has_credentials"] is True
    assert cb["ref"] == "main" and cb["push"] == "branch" and cb["created_at"].endswith("Z")
    assert "credentials" not in cb and token not in r.text

    # encrypted at rest
    async with db.session() as s:
        row = (await s.execute(select(Codebase).where(Codebase.id == cb["codebase_id"]))).scalar_one()
    assert row.credentials_sealed and token not in row.credentials_sealed

    r = await stack.http.get(f"{url}/{cb['codebase_id']}", headers=owner.headers)
    assert r.status_code == 200 and r.json() == cb
    r = await stack.http.patch(f"{url}/{cb['codebase_id']}", json={"push": "pull_request", "credentials": None},
                               headers=owner.headers)
    assert r.status_code == 200, r.text
    assert r.json()["push"] == "pull_request" and r.json()["has_credentials"] is False
    r = await stack.http.patch(f"{url}/{cb['codebase_id']}", json={"push": "sideways"}, headers=owner.headers)
    assert r.status_code == 422

    # another user: 404 everywhere, and not in their list
    for method in ("GET", "PATCH", "DELETE"):
        r = await stack.http.request(method, f"{url}/{cb['codebase_id']}", headers=other.headers,
                                     **({"json": {"name": "x"}} if method == "PATCH" else {}))
        assert r.status_code == 404, (method, r.text)
        assert r.json()["code"] == "codebase_not_found"
    assert (await stack.http.get(url, headers=other.headers)).json()["data"] == []

    r = await stack.http.delete(f"{url}/{cb['codebase_id']}", headers=owner.headers)
    assert r.status_code == 204
    assert (await stack.http.get(f"{url}/{cb['codebase_id']}", headers=owner.headers)).status_code == 404


async def test_codebase_scopes_and_missing_key(stack, make_user):
    reader = await make_user(scopes=["codebases:read"])
    r = await stack.http.post("/v1/automation/codebases", json={"name": "x", "repository_url": "https://github.com/a/b"},
                              headers=reader.headers)
    assert r.status_code == 403 and r.json()["code"] == "insufficient_scope"
    writer = await make_user()
    stack.settings.codebase_key = None
    r = await stack.http.post("/v1/automation/codebases", json={
        "name": "x", "repository_url": "https://github.com/a/b", "credentials": {"type": "ssh_key", "private_key": "k"}},
        headers=writer.headers)
    assert r.status_code == 422 and r.json()["code"] == "credentials_unavailable"
    assert (await stack.http.get("/v1/automation/codebases", headers=writer.headers)).json()["data"] == []
