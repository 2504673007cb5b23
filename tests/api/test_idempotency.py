"""Idempotency-Key on POST: replay, reuse, in-flight races, caller scope, crash recovery.

The race test runs on SQLite always and on PostgreSQL (a throw-away database on 127.0.0.1:5432).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from codetether.api.deps import CurrentPrincipal
from codetether.core import idempotency as store
from codetether.accounts.service import create_api_key, create_user
from codetether.core.db import Database, migrate
from codetether.core.ids import utcnow
from codetether.core.models import ApiKey, IdempotencyRecord, Task
from tests.conftest import UserCreds, make_settings, running_stack, wait_status

TASKS = "/v1/automation/tasks"
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _body(title: str = "Idempotent task", prompt: str = "Summarize this") -> bytes:
    return json.dumps({"title": title, "prompt": prompt, "model": "demo"}).encode()


def _headers(user: UserCreds, key: str) -> dict[str, str]:
    return {**user.headers, "Idempotency-Key": key, "Content-Type": "application/json"}


async def _task_count(db: Database, user_id: str) -> int:
    async with db.session() as s:
        return len(list((await s.execute(select(Task.id).where(Task.user_id == user_id))).scalars()))


async def test_same_key_replays_the_first_response(stack, user):
    key = str(uuid.uuid4())
    first = await stack.http.post(TASKS, content=_body(), headers=_headers(user, key))
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    second = await stack.http.post(TASKS, content=_body(), headers=_headers(user, key))
    assert second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["content-type"] == "application/json"
    # A fresh request id, and the rate-limit headers of now, not of the first call.
    assert second.headers["x-request-id"] != first.headers["x-request-id"]
    assert "x-ratelimit-limit" in second.headers
    assert await _task_count(stack.db, user.user_id) == 1
    done = await wait_status(stack.http, first.json()["task_id"], user.headers, {"completed", "failed"})
    assert done["status"] == "completed"


async def test_other_body_with_the_same_key_is_422(stack, user):
    key = str(uuid.uuid4())
    assert (await stack.http.post(TASKS, content=_body(), headers=_headers(user, key))).status_code == 201
    r = await stack.http.post(TASKS, content=_body(title="Something else"), headers=_headers(user, key))
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "idempotency_key_reused"
    # Another path with the same key is another request too.
    r = await stack.http.post(f"{TASKS}/task_x/messages", content=_body(), headers=_headers(user, key))
    assert r.status_code == 422 and r.json()["code"] == "idempotency_key_reused"
    assert await _task_count(stack.db, user.user_id) == 1


async def test_key_is_scoped_to_the_caller(stack, make_user):
    a, b = await make_user(), await make_user()
    key = "shared-key-1"
    ra = await stack.http.post(TASKS, content=_body(), headers=_headers(a, key))
    rb = await stack.http.post(TASKS, content=_body(), headers=_headers(b, key))
    assert ra.status_code == rb.status_code == 201
    assert "idempotent-replayed" not in rb.headers
    assert ra.json()["task_id"] != rb.json()["task_id"]


async def test_invalid_keys_are_400(stack, user):
    for bad in ("x" * 256, "", " leading-space", "caf\u00e9".encode("latin-1"), "tab\there"):
        headers = {**user.headers, "Content-Type": "application/json"}
        r = await stack.http.post(TASKS, content=_body(), headers={**headers, "Idempotency-Key": bad})
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["code"] == "invalid_idempotency_key"
    ok = await stack.http.post(TASKS, content=_body(), headers=_headers(user, "k" * 255))
    assert ok.status_code == 201


async def test_validation_errors_do_not_spend_the_key(stack, user):
    key = str(uuid.uuid4())
    bad = await stack.http.post(TASKS, content=b'{"title": ""}', headers=_headers(user, key))
    assert bad.status_code == 422 and bad.json()["code"] == "validation_error"
    good = await stack.http.post(TASKS, content=_body(), headers=_headers(user, key))
    assert good.status_code == 201 and "idempotent-replayed" not in good.headers
    # A refusal decided by the endpoint (a business 422) is a result and is replayed.
    key2 = str(uuid.uuid4())
    body = json.dumps({"title": "t", "prompt": "p", "model": "no-such-model"}).encode()
    r1 = await stack.http.post(TASKS, content=body, headers=_headers(user, key2))
    r2 = await stack.http.post(TASKS, content=body, headers=_headers(user, key2))
    assert r1.status_code == r2.status_code == 422
    assert r1.json()["code"] == "unknown_model" and r2.headers["idempotent-replayed"] == "true"


async def test_stored_record_lasts_24_hours(stack, user):
    key = str(uuid.uuid4())
    first = await stack.http.post(TASKS, content=_body(), headers=_headers(user, key))
    assert first.status_code == 201
    first_id = first.json()["task_id"]
    async with stack.db.session() as s:
        row = (await s.execute(select(IdempotencyRecord).where(IdempotencyRecord.key == key))).scalar_one()
    # A create stores its claim with the task row, in one transaction, and nothing else: the
    # replay is rebuilt from the task row.
    assert row.state == "created" and row.response_body is None and row.locked_until is None
    assert row.scope.startswith(user.user_id)
    lifetime = row.expires_at - row.created_at
    assert lifetime >= timedelta(hours=24)
    assert first_id == f"task_{row.resource_id}"
    # Other routes store the first response.
    key2 = str(uuid.uuid4())
    r = await stack.http.post(f"{TASKS}/{first_id}/messages", content=json.dumps({"message": "more"}).encode(),
                              headers=_headers(user, key2))
    async with stack.db.session() as s:
        row2 = (await s.execute(select(IdempotencyRecord).where(IdempotencyRecord.key == key2))).scalar_one()
    assert row2.state == "done" and row2.response_status == r.status_code


async def _race(http, user: UserCreds, n: int = 20) -> list:
    key = str(uuid.uuid4())
    body = _body(title=f"race {key[:8]}")
    return await asyncio.gather(*(http.post(TASKS, content=body, headers=_headers(user, key)) for _ in range(n)))


def _assert_one_task(results) -> str:
    statuses = [r.status_code for r in results]
    assert set(statuses) <= {201, 409}, [r.text for r in results if r.status_code not in (201, 409)]
    created = [r for r in results if r.status_code == 201]
    assert created, statuses
    ids = {r.json()["task_id"] for r in created}
    assert len(ids) == 1, ids
    fresh = [r for r in created if "idempotent-replayed" not in r.headers]
    assert len(fresh) == 1
    for r in results:
        if r.status_code == 409:
            assert r.json()["code"] == "idempotency_key_in_use"
    return ids.pop()


async def test_twenty_concurrent_requests_make_one_task_sqlite(stack, user):
    results = await _race(stack.http, user)
    task_id = _assert_one_task(results)
    assert await _task_count(stack.db, user.user_id) == 1
    done = await wait_status(stack.http, task_id, user.headers, {"completed", "failed"})
    assert done["status"] == "completed"


@pytest.fixture
async def postgres_db():
    import asyncpg

    name = f"codetether_idem_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    await asyncio.to_thread(migrate, url)
    database = Database(url)
    try:
        yield database
    finally:
        await database.dispose()
        admin = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.mark.postgres
async def test_twenty_concurrent_requests_make_one_task_postgres(postgres_db, temporal_env, temporal_address, tmp_path):
    settings = make_settings(temporal_address, postgres_db.url, tmp_path)
    user = await create_user(postgres_db, f"pg-{uuid.uuid4().hex[:8]}@example.com", tier="enterprise")
    _row, key = await create_api_key(postgres_db, user.id)
    creds = UserCreds(user.id, user.email, key)
    async with running_stack(settings, temporal_env.client, postgres_db) as s:
        results = await _race(s.http, creds)
        task_id = _assert_one_task(results)
        assert await _task_count(postgres_db, user.id) == 1
        done = await wait_status(s.http, task_id, creds.headers, {"completed", "failed"})
        assert done["status"] == "completed"


async def _claimed_then_crashed(db: Database, user: UserCreds, key: str, body: bytes) -> str:
    """What a request leaves behind when its process dies after reserving the task id."""
    async with db.session() as s:
        key_id = (await s.execute(select(ApiKey.id).where(ApiKey.user_id == user.user_id))).scalar_one()
    fp = store.fingerprint("POST", TASKS, body)
    from codetether.api.auth import Principal
    from codetether.api.edge.idempotency import caller_scope

    scope = caller_scope(Principal(user.user_id, user.email, "enterprise", [], "api_key", credential_id=key_id))
    claim = await store.claim(db, scope, key, "POST", TASKS, fp)
    assert claim.outcome is store.Outcome.PROCEED
    return store.resource_id(claim.resource_seed, "task"), claim.record_id


async def _expire_lock(db: Database, record_id: int) -> None:
    async with db.session() as s:
        await s.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.id == record_id)
            .values(locked_until=utcnow() - timedelta(seconds=1))
        )
        await s.commit()


async def test_in_flight_is_409_and_a_crashed_request_is_finished_by_the_retry(stack, user):
    key = str(uuid.uuid4())
    body = _body(title="crash recovery")
    task_id, record_id = await _claimed_then_crashed(stack.db, user, key, body)
    # While the (dead) first request still holds the lock, a retry is told to wait.
    r = await stack.http.post(TASKS, content=body, headers=_headers(user, key))
    assert r.status_code == 409 and r.json()["code"] == "idempotency_key_in_use"
    assert r.headers["retry-after"].isdigit(), "Retry-After is integer seconds"
    # Once the lock has expired the retry takes over and creates the reserved task, not a new one.
    await _expire_lock(stack.db, record_id)
    r = await stack.http.post(TASKS, content=body, headers=_headers(user, key))
    assert r.status_code == 201, r.text
    assert r.json()["task_id"] == task_id
    done = await wait_status(stack.http, task_id, user.headers, {"completed", "failed"})
    assert done["status"] == "completed"
    assert await _task_count(stack.db, user.user_id) == 1


async def test_crash_after_the_workflow_started_reuses_it(stack, user):
    """The first attempt wrote the task row and started the workflow, then died before answering."""
    from codetether.tasks.launch import NewTask, create_task

    key = str(uuid.uuid4())
    body = _body(title="started then crashed")
    task_id, record_id = await _claimed_then_crashed(stack.db, user, key, body)
    new = NewTask(owner_id=user.user_id, title="started then crashed", description="Summarize this", model="demo")
    await create_task(stack.db, stack.client, stack.settings, new, task_id=task_id)
    await _expire_lock(stack.db, record_id)
    r = await stack.http.post(TASKS, content=body, headers=_headers(user, key))
    assert r.status_code == 201, r.text
    assert r.json()["task_id"] == task_id
    done = await wait_status(stack.http, task_id, user.headers, {"completed", "failed"})
    assert done["status"] == "completed"
    assert await _task_count(stack.db, user.user_id) == 1


async def test_unauthenticated_post_ignores_the_key(stack):
    r = await stack.http.post(TASKS, content=_body(), headers={"Idempotency-Key": "k1", "Content-Type": "application/json"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")


async def test_expired_keys_are_free_again_and_swept(stack, user):
    key = str(uuid.uuid4())
    assert (await stack.http.post(TASKS, content=_body(), headers=_headers(user, key))).status_code == 201
    async with stack.db.session() as s:
        await s.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == key)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await s.commit()
    # Past its 24 h the key is as good as new: another body is a new request, not a reuse.
    r = await stack.http.post(TASKS, content=_body(title="after expiry"), headers=_headers(user, key))
    assert r.status_code == 201 and "idempotent-replayed" not in r.headers
    async with stack.db.session() as s:
        await s.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == key)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await s.commit()
    assert await store.purge_expired(stack.db) >= 1
    async with stack.db.session() as s:
        assert (await s.execute(select(IdempotencyRecord).where(IdempotencyRecord.key == key))).first() is None


async def test_server_errors_give_the_key_back(stack, user):
    calls = {"n": 0}

    async def flaky(_principal: CurrentPrincipal) -> dict:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("transient failure")
        return {"attempt": calls["n"]}

    stack.app.add_api_route("/v1/test-flaky", flaky, methods=["POST"], status_code=201)
    key = str(uuid.uuid4())
    headers = _headers(user, key)
    first = await stack.http.post("/v1/test-flaky", content=b"{}", headers=headers)
    assert first.status_code == 500 and first.json()["code"] == "internal_error"
    # The 500 was not stored: the retry runs the endpoint again, and its answer is what replays.
    second = await stack.http.post("/v1/test-flaky", content=b"{}", headers=headers)
    assert second.status_code == 201 and second.json() == {"attempt": 2}
    assert "idempotent-replayed" not in second.headers
    third = await stack.http.post("/v1/test-flaky", content=b"{}", headers=headers)
    assert third.status_code == 201 and third.json() == {"attempt": 2}
    assert third.headers["idempotent-replayed"] == "true"
    assert calls["n"] == 2


def test_scope_is_the_user_and_the_integration():
    from codetether.api.auth import Principal
    from codetether.api.edge.idempotency import caller_scope

    def oauth(token_id: str, client: str = "cli_zapier") -> Principal:
        return Principal("usr_1", "a@example.com", "free", [], "oauth", credential_id=token_id, client_id=client)

    # A refreshed access token is the same integration; another OAuth client is not.
    assert caller_scope(oauth("tok_1")) == caller_scope(oauth("tok_2"))
    assert caller_scope(oauth("tok_1")) != caller_scope(oauth("tok_1", "cli_n8n"))
    key_a = Principal("usr_1", "a@example.com", "free", [], "api_key", credential_id="key_a")
    key_b = Principal("usr_1", "a@example.com", "free", [], "api_key", credential_id="key_b")
    assert caller_scope(key_a) != caller_scope(key_b)
    other_user = Principal("usr_2", "b@example.com", "free", [], "api_key", credential_id="key_a")
    assert caller_scope(other_user) != caller_scope(key_a)
    long_client = Principal("usr_1", "a@example.com", "free", [], "oidc", client_id="x" * 300)
    assert len(caller_scope(long_client)) <= 100


async def test_replay_is_rebuilt_from_the_task_row_as_first_answered(stack, user):
    """A keyed create stores no response: the replay is the task as created, even once it ran."""
    key = str(uuid.uuid4())
    first = await stack.http.post(TASKS, content=_body(title="rebuilt"), headers=_headers(user, key))
    assert first.status_code == 201, first.text
    done = await wait_status(stack.http, first.json()["task_id"], user.headers, {"completed", "failed"})
    assert done["status"] == "completed"
    again = await stack.http.post(TASKS, content=_body(title="rebuilt"), headers=_headers(user, key))
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    other = await stack.http.post(TASKS, content=_body(title="not the same"), headers=_headers(user, key))
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    assert await _task_count(stack.db, user.user_id) == 1


async def test_crash_between_the_commit_and_the_start_is_finished_by_the_retry(stack, user):
    """The claim and the task row were committed, then the process died before the start."""
    from codetether.api.edge.idempotency import caller_scope
    from codetether.api.auth import Principal
    from codetether.core.ids import ulid
    from codetether.tasks.launch import _INSERT_TASK, NewTask, _new_row, _row_values

    key = str(uuid.uuid4())
    body = _body(title="committed then crashed")
    async with stack.db.session() as s:
        key_id = (await s.execute(select(ApiKey.id).where(ApiKey.user_id == user.user_id))).scalar_one()
    scope = caller_scope(Principal(user.user_id, user.email, "enterprise", [], "api_key", credential_id=key_id))
    seed = ulid()
    new = NewTask(owner_id=user.user_id, title="committed then crashed", description="Summarize this", model="demo")
    row = _new_row(f"task_{seed}", new, run_id=f"run_{seed}")
    claim = await store.claim_with_row(
        stack.db, scope, key, "POST", TASKS, store.fingerprint("POST", TASKS, body), seed, (_INSERT_TASK, _row_values(row))
    )
    assert claim.outcome is store.Outcome.PROCEED
    # Within the lock timeout the first request may still be starting the workflow: wait.
    r = await stack.http.post(TASKS, content=body, headers=_headers(user, key))
    assert r.status_code == 409 and r.json()["code"] == "idempotency_key_in_use", r.text
    async with stack.db.session() as s:
        await s.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.id == claim.record_id)
            .values(created_at=utcnow() - timedelta(minutes=10))
        )
        await s.commit()
    # After it, the retry finishes the dead request's job with the same task.
    r = await stack.http.post(TASKS, content=body, headers=_headers(user, key))
    assert r.status_code == 201, r.text
    assert r.json()["task_id"] == row.id and r.headers["idempotent-replayed"] == "true"
    done = await wait_status(stack.http, row.id, user.headers, {"completed", "failed"})
    assert done["status"] == "completed"
    assert await _task_count(stack.db, user.user_id) == 1


async def test_a_failed_start_leaves_neither_task_nor_key(stack, user, monkeypatch):
    from codetether.tasks import launch as taskservice

    async def down(*_a, **_k):
        raise RuntimeError("temporal is down")

    key = str(uuid.uuid4())
    monkeypatch.setattr(taskservice, "start_task_workflow", down)
    r = await stack.http.post(TASKS, content=_body(title="no start"), headers=_headers(user, key))
    assert r.status_code == 503 and r.json()["code"] == "temporal_unavailable"
    assert await _task_count(stack.db, user.user_id) == 0
    async with stack.db.session() as s:
        assert (await s.execute(select(IdempotencyRecord).where(IdempotencyRecord.key == key))).first() is None
    monkeypatch.undo()
    r = await stack.http.post(TASKS, content=_body(title="no start"), headers=_headers(user, key))
    assert r.status_code == 201 and "idempotent-replayed" not in r.headers
