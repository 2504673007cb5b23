"""The task REST API as a client sees it: validation, filters, pagination, isolation, auth,
reads without a worker, and the account/model/health routes.

Tasks here use the offline ``demo`` model. Tests that only create and read run without a worker
(``running_stack(..., worker=False)``): every read answers from the database, and the tasks stay
``queued`` because nobody runs them.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
import pytest_asyncio

from codetether.core.ids import iso, new_id, parse_iso
from codetether.core.models import Codebase
from tests.conftest import running_stack, wait_status

TASKS = "/v1/automation/tasks"
PUBLIC_MODELS = {
    "claude-sonnet-4", "claude-opus", "claude-haiku", "gpt-4o", "gpt-4.1", "gemini-2.5-pro",
    "gemini-2.5-flash", "grok-3", "minimax-m2.1", "o3", "o3-mini",
}


@pytest_asyncio.fixture
async def api(settings, temporal_env, db):
    """The API with no worker behind it."""
    async with running_stack(settings, temporal_env.client, db, worker=False) as s:
        yield s


def problem(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert {"type", "title", "detail", "request_id"} <= set(body)
    return body


async def create(stack, user, **body) -> dict:
    body.setdefault("title", "A task")
    if "prompt" not in body:
        body.setdefault("description", "Do it.")
    r = await stack.http.post(TASKS, json=body, headers=user.headers)
    assert r.status_code == 201, r.text
    return r.json()


# ---- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, field",
    [
        ({"description": "no title"}, "title"),
        ({"title": "", "description": "empty title"}, "title"),
        ({"title": "   ", "description": "blank title"}, "title"),
        ({"title": "x" * 201, "description": "long title"}, "title"),
        ({"title": "no instructions"}, None),
        ({"title": "blank instructions", "description": "  "}, None),
        ({"title": "t", "description": "d", "colour": "blue"}, "colour"),
        ({"title": "t", "description": "d", "agent_type": "wizard"}, "agent_type"),
        ({"title": "t", "description": "d", "metadata": {"blob": "x" * (16 * 1024)}}, "metadata"),
        ({"title": "t", "description": "d", "metadata": ["not", "an", "object"]}, "metadata"),
        ({"title": "t", "description": "d", "priority": "high"}, "priority"),
    ],
)
async def test_create_validation_errors(api, user, body, field):
    r = await api.http.post(TASKS, json=body, headers=user.headers)
    p = problem(r, 422, "validation_error")
    assert isinstance(p["errors"], list) and p["errors"]
    if field is not None:
        assert any(e["field"].split(".")[0] == field for e in p["errors"]), p["errors"]
    # Nothing was created.
    assert (await api.http.get(TASKS, headers=user.headers)).json()["data"] == []


async def test_create_title_limits_and_defaults(api, user):
    task = await create(api, user, title="x" * 200, description="exactly 200")
    assert task["title"] == "x" * 200
    assert task["status"] == "queued"
    assert task["agent_type"] == "general"
    assert task["model"] == "demo"
    assert task["priority"] == 0
    assert task["metadata"] == {}
    assert task["run_id"].startswith("run_")
    for key in ("started_at", "completed_at", "runtime_seconds", "result", "result_summary", "error",
                "progress", "required_action", "webhook_url", "callback_url", "codebase_id"):
        assert task[key] is None, key
    assert task["retry_count"] == 0
    assert parse_iso(task["created_at"]) is not None and task["created_at"].endswith("Z")


async def test_create_metadata_is_returned_as_given(api, user):
    metadata = {"zap_id": 42, "nested": {"list": [1, 2.5, "three", None, True]}, "ünïcode": "✓"}
    task = await create(api, user, metadata=metadata)
    assert task["metadata"] == metadata
    got = (await api.http.get(f"{TASKS}/{task['task_id']}", headers=user.headers)).json()
    assert got["metadata"] == metadata
    # Just under the 16 KiB bound is fine.
    big = {"blob": "x" * (16 * 1024 - 20)}
    assert (await create(api, user, metadata=big))["metadata"] == big


async def test_prompt_alias_and_callback_url_beside_webhook_url(api, user):
    task = await create(api, user, prompt="Use the alias", callback_url="https://hooks.example.com/ct")
    assert task["description"] == "Use the alias"
    # callback_url is its own destination now, not an alias of webhook_url.
    assert task["callback_url"] == "https://hooks.example.com/ct"
    assert task["webhook_url"] is None
    assert "webhook_secret" not in task
    both = await create(
        api, user, webhook_url="https://hooks.example.com/all", callback_url="https://hooks.example.com/resume",
        webhook_secret="s3cret-value",
    )
    got = (await api.http.get(f"{TASKS}/{both['task_id']}", headers=user.headers)).json()
    assert (got["webhook_url"], got["callback_url"]) == ("https://hooks.example.com/all", "https://hooks.example.com/resume")
    assert "s3cret-value" not in json.dumps(got)


async def test_malformed_json_is_400(api, user):
    r = await api.http.post(TASKS, content=b"{not json", headers={**user.headers, "content-type": "application/json"})
    problem(r, 400, "malformed_json")


# ---- reads without a worker -------------------------------------------------------------------


async def test_get_answers_without_worker(api, user):
    task = await create(api, user, title="Nobody runs me")
    r = await api.http.get(f"{TASKS}/{task['task_id']}", headers=user.headers)
    assert r.status_code == 200
    assert r.json()["status"] == "queued"
    assert r.json() == task
    # ?wait holds at most N seconds and then answers the current state.
    r = await api.http.get(f"{TASKS}/{task['task_id']}", params={"wait": 1}, headers=user.headers)
    assert r.status_code == 200 and r.json()["status"] == "queued"


async def test_wait_bounds(api, user):
    task = await create(api, user)
    for bad in (-1, 61, "soon"):
        r = await api.http.get(f"{TASKS}/{task['task_id']}", params={"wait": bad}, headers=user.headers)
        problem(r, 422, "validation_error")


async def test_unknown_task_is_404(api, user):
    r = await api.http.get(f"{TASKS}/task_doesnotexist", headers=user.headers)
    problem(r, 404, "task_not_found")
    r = await api.http.delete(f"{TASKS}/task_doesnotexist", headers=user.headers)
    problem(r, 404, "task_not_found")


# ---- list: filters and pagination -------------------------------------------------------------


async def test_cursor_pagination_newest_first(api, user):
    created = []
    for i in range(25):
        created.append((await create(api, user, title=f"task {i:02d}"))["task_id"])
    expected = list(reversed(created))

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 7}
        if cursor:
            params["cursor"] = cursor
        r = await api.http.get(TASKS, params=params, headers=user.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["data"]) <= 7
        seen.extend(t["task_id"] for t in page["data"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 4
    assert seen == expected  # newest first, no duplicates, no gaps

    times = [parse_iso(t["created_at"]) for t in (await api.http.get(TASKS, params={"limit": 100}, headers=user.headers)).json()["data"]]
    assert times == sorted(times, reverse=True)

    default = (await api.http.get(TASKS, headers=user.headers)).json()
    assert len(default["data"]) == 20 and default["next_cursor"] is not None
    everything = (await api.http.get(TASKS, params={"limit": 100}, headers=user.headers)).json()
    assert [t["task_id"] for t in everything["data"]] == expected and everything["next_cursor"] is None


async def test_limit_bounds_and_invalid_cursor(api, user):
    for bad in (0, 101, -5, "many"):
        r = await api.http.get(TASKS, params={"limit": bad}, headers=user.headers)
        problem(r, 422, "validation_error")
    for limit in (1, 100):
        assert (await api.http.get(TASKS, params={"limit": limit}, headers=user.headers)).status_code == 200
    for bad in ("not-a-cursor", "eyJhIjoxfQ", "!!!"):
        r = await api.http.get(TASKS, params={"cursor": bad}, headers=user.headers)
        problem(r, 400, "invalid_cursor")


async def test_list_filters(stack, user, db):
    async with db.session() as s:
        codebase = Codebase(id=new_id("cb"), user_id=user.user_id, name="repo")
        s.add(codebase)
        await s.commit()

    done = await create(stack, user, title="done", agent_type="build")
    failed = await create(stack, user, title="failed", description="FAIL: no way", agent_type="plan")
    asking = await create(stack, user, title="asking", description="ASK: which?", codebase_id=codebase.id)
    await wait_status(stack.http, done["task_id"], user.headers, {"completed"}, timeout=60)
    await wait_status(stack.http, failed["task_id"], user.headers, {"failed"}, timeout=60)
    await wait_status(stack.http, asking["task_id"], user.headers, {"needs_input"}, timeout=60)

    async def ids(**params) -> list[str]:
        r = await stack.http.get(TASKS, params=params, headers=user.headers)
        assert r.status_code == 200, r.text
        return [t["task_id"] for t in r.json()["data"]]

    assert await ids() == [asking["task_id"], failed["task_id"], done["task_id"]]
    assert await ids(status="completed") == [done["task_id"]]
    assert await ids(status="completed,failed") == [failed["task_id"], done["task_id"]]
    assert await ids(status="needs_input, failed") == [asking["task_id"], failed["task_id"]]
    assert await ids(status="running") == []
    problem(await stack.http.get(TASKS, params={"status": "done"}, headers=user.headers), 422, "validation_error")
    assert await ids(agent_type="plan") == [failed["task_id"]]
    assert await ids(agent_type="general") == [asking["task_id"]]
    assert await ids(model="demo") == [asking["task_id"], failed["task_id"], done["task_id"]]
    assert await ids(model="gpt-4o") == []
    assert await ids(codebase_id=codebase.id) == [asking["task_id"]]
    assert await ids(status="completed", agent_type="plan") == []

    t_failed = parse_iso(failed["created_at"])
    assert await ids(created_after=failed["created_at"]) == [asking["task_id"]]
    assert await ids(created_before=failed["created_at"]) == [done["task_id"]]
    # Bounds are exclusive and compared at the millisecond precision times are shown with.
    window = dict(created_after=iso(t_failed - timedelta(milliseconds=1)), created_before=iso(t_failed + timedelta(milliseconds=1)))
    assert await ids(**window) == [failed["task_id"]]
    problem(await stack.http.get(TASKS, params={"created_after": "yesterday"}, headers=user.headers), 422, "validation_error")

    # The failed task says why; the waiting one says what it asks.
    failed_now = (await stack.http.get(f"{TASKS}/{failed['task_id']}", headers=user.headers)).json()
    assert failed_now["error"] == {"code": "provider_rejected", "message": failed_now["error"]["message"]}
    assert "no way" in failed_now["error"]["message"]


# ---- isolation and auth -----------------------------------------------------------------------


async def test_other_users_task_is_invisible(api, user, make_user):
    other = await make_user()
    mine = await create(api, user, title="mine")
    theirs = await create(api, other, title="theirs")

    r = await api.http.get(f"{TASKS}/{theirs['task_id']}", headers=user.headers)
    assert problem(r, 404, "task_not_found")["detail"] == (
        await api.http.get(f"{TASKS}/task_doesnotexist", headers=user.headers)
    ).json()["detail"].replace("task_doesnotexist", theirs["task_id"])
    problem(await api.http.get(f"{TASKS}/{theirs['task_id']}", params={"wait": 1}, headers=user.headers), 404, "task_not_found")
    problem(await api.http.delete(f"{TASKS}/{theirs['task_id']}", headers=user.headers), 404, "task_not_found")

    listed = [t["task_id"] for t in (await api.http.get(TASKS, params={"limit": 100}, headers=user.headers)).json()["data"]]
    assert listed == [mine["task_id"]]
    listed_other = [t["task_id"] for t in (await api.http.get(TASKS, params={"limit": 100}, headers=other.headers)).json()["data"]]
    assert listed_other == [theirs["task_id"]]
    # The other user's task was not touched by the refused cancel.
    assert (await api.http.get(f"{TASKS}/{theirs['task_id']}", headers=other.headers)).json()["status"] == "queued"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer ct_not-a-real-key"}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "}],
)
async def test_unauthenticated_is_401_with_challenge(api, headers):
    for method, path in (("GET", TASKS), ("POST", TASKS), ("GET", "/v1/automation/me"), ("GET", "/v1/automation/models")):
        r = await api.http.request(method, path, headers=headers, json={"title": "t", "description": "d"} if method == "POST" else None)
        problem(r, 401, "unauthenticated")
        assert r.headers["www-authenticate"].startswith("Bearer")


async def test_read_only_key_cannot_create_or_cancel(api, user, make_user):
    reader = await make_user(scopes=["tasks:read"])
    r = await api.http.post(TASKS, json={"title": "t", "description": "d"}, headers=reader.headers)
    problem(r, 403, "insufficient_scope")
    assert "tasks:write" in r.headers.get("www-authenticate", "") + r.json()["detail"]
    assert (await api.http.get(TASKS, headers=reader.headers)).status_code == 200

    task = await create(api, user)
    problem(await api.http.delete(f"{TASKS}/{task['task_id']}", headers=reader.headers), 403, "insufficient_scope")

    writer = await make_user(scopes=["tasks:write"])
    problem(await api.http.get(TASKS, headers=writer.headers), 403, "insufficient_scope")


# ---- account, models, health ------------------------------------------------------------------


async def test_me(api, make_user):
    free = await make_user(tier="free", scopes=["tasks:read", "tasks:write"])
    r = await api.http.get("/v1/automation/me", headers=free.headers)
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["user_id"] == free.user_id
    assert me["email"] == free.email
    assert me["tier"] == "free"
    assert sorted(me["scopes"]) == ["tasks:read", "tasks:write"]
    assert me["auth_method"] == "api_key"
    assert me["concurrent_tasks_limit"] == 5
    assert me["rate_limit"]["limit"] == 60
    assert 0 <= me["rate_limit"]["remaining"] <= 60
    assert isinstance(me["rate_limit"]["reset"], int)


async def test_models_lists_public_names_and_demo(api, user):
    r = await api.http.get("/v1/automation/models", headers=user.headers)
    assert r.status_code == 200, r.text
    models = {m["name"]: m for m in r.json()["data"]}
    assert PUBLIC_MODELS | {"demo"} <= set(models)
    for m in models.values():
        assert isinstance(m["available"], bool) and m["provider"]
    assert models["demo"]["available"] is True
    assert r.json()["default_model"] == "demo"
    assert models["demo"]["default"] is True


async def test_health_and_readiness(api):
    r = await api.http.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    r = await api.http.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ok"
    assert r.json()["checks"] == {"database": "ok", "temporal": "ok", "search_attributes": "ok"}
    assert r.headers.get("x-request-id")


async def test_concurrent_creates_get_distinct_ids(api, user):
    results = await asyncio.gather(*(create(api, user, title=f"parallel {i}") for i in range(8)))
    ids = [t["task_id"] for t in results]
    assert len(set(ids)) == 8


async def test_pagination_keeps_tasks_created_in_the_same_millisecond(api, user, db):
    # Concurrent creates can share a millisecond; the cursor must still neither skip nor repeat.
    from codetether.core.ids import utcnow
    from codetether.core.models import Task

    base = utcnow().replace(microsecond=123000)
    rows = []
    async with db.session() as s:
        for i in range(6):
            when = base + timedelta(microseconds=100 * i)
            task = Task(
                id=new_id("task"), user_id=user.user_id, run_id=new_id("run"), title=f"same ms {i}",
                description="d", agent_type="general", model="demo", priority=0, metadata_={},
                status="queued", created_at=when, updated_at=when,
            )
            s.add(task)
            rows.append(task.id)
        await s.commit()
    expected = list(reversed(rows))

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.http.get(TASKS, params=params, headers=user.headers)).json()
        seen.extend(t["task_id"] for t in page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
