"""The task lifecycle on whatever database the suite runs on; in the production pass of
``make test`` that is a fresh PostgreSQL database and the machine's Redis (checked here, so the
pass cannot silently fall back to SQLite)."""

from __future__ import annotations

import os

import pytest
import redis.asyncio as aioredis
from sqlalchemy import text

from tests.conftest import wait_status

pytestmark = pytest.mark.postgres

REQUIRED = os.environ.get("CODETETHER_TEST_REQUIRE_POSTGRES") == "1"


@pytest.mark.skipif(not REQUIRED, reason="only meaningful in the PostgreSQL pass (python -m tests.production.run_postgres)")
async def test_the_pass_really_uses_postgres_and_redis(db, settings):
    assert db.engine.dialect.name == "postgresql"
    async with db.session() as s:
        version = (await s.execute(text("SHOW server_version"))).scalar_one()
    assert version
    assert settings.redis_url and settings.redis_url.startswith("redis://")
    r = aioredis.Redis.from_url(settings.redis_url)
    try:
        assert await r.ping()
    finally:
        await r.aclose()


async def test_lifecycle_create_list_input_cancel(stack, user):
    h = user.headers
    r = await stack.http.post(
        "/v1/automation/tasks",
        json={"title": "On the backend", "description": "Plan it\nASK: Which region?", "metadata": {"k": [1, "ü"]}},
        headers=h,
    )
    assert r.status_code == 201, r.text
    task_id = r.json()["task_id"]
    waiting = await wait_status(stack.http, task_id, h, {"needs_input", "failed"})
    assert waiting["status"] == "needs_input"
    assert waiting["metadata"] == {"k": [1, "ü"]}

    listed = await stack.http.get("/v1/automation/tasks", params={"status": "needs_input"}, headers=h)
    assert listed.status_code == 200
    assert [t["task_id"] for t in listed.json()["data"]] == [task_id]

    r = await stack.http.post(
        f"/v1/automation/tasks/{task_id}/input",
        json={"message": "eu-west", "required_action_id": waiting["required_action"]["id"]},
        headers=h,
    )
    assert r.status_code in (200, 202), r.text
    done = await wait_status(stack.http, task_id, h, {"completed", "failed"})
    assert done["status"] == "completed", done

    r = await stack.http.post(
        "/v1/automation/tasks", json={"title": "Cancel me", "description": "SLEEP: 30"}, headers=h
    )
    other = r.json()["task_id"]
    await wait_status(stack.http, other, h, {"running"})
    r = await stack.http.delete(f"/v1/automation/tasks/{other}", headers=h)
    assert r.status_code == 200, r.text
    assert (await wait_status(stack.http, other, h, {"cancelled"}))["status"] == "cancelled"

    page = (await stack.http.get("/v1/automation/tasks", params={"limit": 1}, headers=h)).json()
    assert page["data"][0]["task_id"] == other and page["next_cursor"]
    nxt = (await stack.http.get("/v1/automation/tasks", params={"limit": 1, "cursor": page["next_cursor"]}, headers=h)).json()
    assert nxt["data"][0]["task_id"] == task_id


async def test_api_keys_and_cli_admin_on_the_same_database(stack, user, database_url, tmp_path):
    import asyncio
    import sys

    h = user.headers
    r = await stack.http.post("/v1/api-keys", json={"name": "ci", "scopes": ["tasks:read"]}, headers=h)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["key"].startswith("ct_") and created["scopes"] == ["tasks:read"]
    narrow = {"Authorization": f"Bearer {created['key']}"}
    assert (await stack.http.get("/v1/automation/tasks", headers=narrow)).status_code == 200
    denied = await stack.http.post("/v1/automation/tasks", json={"title": "x", "description": "y"}, headers=narrow)
    assert denied.status_code == 403 and denied.json()["code"] == "insufficient_scope"
    listed = (await stack.http.get("/v1/api-keys", headers=h)).json()["data"]
    assert created["id"] in {k["id"] for k in listed}
    assert (await stack.http.delete(f"/v1/api-keys/{created['id']}", headers=h)).status_code == 204
    assert (await stack.http.get("/v1/automation/tasks", headers=narrow)).status_code == 401

    # The admin CLI writes to the same database the API reads.
    env = {"CODETETHER_DATABASE_URL": database_url, "CODETETHER_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "codetether.cli", "keys", "create", "--user", user.email, "--scopes", "tasks:read",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    cli_key = out.decode().strip()
    assert cli_key.startswith("ct_")
    me = await stack.http.get("/v1/automation/me", headers={"Authorization": f"Bearer {cli_key}"})
    assert me.status_code == 200 and me.json()["email"] == user.email
