"""Scale-out on one machine: 2 API processes and 2 worker processes against one Temporal dev
server, one PostgreSQL database (fresh, dropped afterwards) and one Redis.

* tasks created through both APIs spread over both workers (the worker identity, ``pid@host``,
  that Temporal records on each agent turn);
* one idempotency store: the same key on both APIs makes one task;
* one rate limit: a free user's 60 requests a minute are shared by both APIs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx
import pytest
from temporalio.api.enums.v1 import EventType

from codetether.accounts.service import create_api_key, create_user
from codetether.core.db import Database, migrate
from tests.chaos.conftest import temporal_client, wait_task
from tests.production.pg import fresh_database
from tests.production.procs import Cluster
from tests.production.run_postgres import REDIS_URL, check_redis

TASKS = 16


@pytest.fixture
def pg_url():
    with fresh_database("ct_scaleout") as url:
        migrate(url)
        yield url


@pytest.fixture
async def scaled(tmp_path, pg_url):
    check_redis(REDIS_URL)
    c = Cluster(tmp_path / "cluster", pg_url, redis_url=REDIS_URL)
    database = Database(pg_url)
    try:
        await asyncio.to_thread(c.start_temporal)
        for _ in range(2):
            await asyncio.to_thread(c.start_api)
        for _ in range(2):
            c.start_worker()
        yield c, database
    finally:
        await database.dispose()
        await asyncio.to_thread(c.close)


async def new_key(db: Database, tier: str) -> dict[str, str]:
    user = await create_user(db, f"scale-{uuid.uuid4().hex[:8]}@example.com", tier=tier)
    _row, key = await create_api_key(db, user.id)
    return {"Authorization": f"Bearer {key}"}


async def test_two_apis_two_workers_share_everything(scaled):
    cluster, db = scaled
    (p1, port1), (p2, port2) = cluster.apis
    w1, w2 = cluster.workers
    apis = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{p}", timeout=60) for p in (port1, port2)]
    try:
        h = await new_key(db, "enterprise")

        # Tasks through both APIs, done by both workers.
        ids = []
        for i in range(TASKS):
            r = await apis[i % 2].post(
                "/v1/automation/tasks", json={"title": f"Spread {i}", "description": "SLEEP: 1"}, headers=h
            )
            assert r.status_code == 201, r.text
            ids.append(r.json()["task_id"])
        for i, task_id in enumerate(ids):
            # Each API sees the tasks the other one created.
            done = await wait_task(apis[(i + 1) % 2], task_id, h, lambda t: t["status"] in ("completed", "failed"), 120)
            assert done["status"] == "completed", done
        client = await temporal_client(cluster)
        ran_on: Counter[int] = Counter()
        for task_id in ids:
            scheduled: dict[int, str] = {}
            async for e in client.get_workflow_handle(task_id).fetch_history_events():
                if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                    scheduled[e.event_id] = e.activity_task_scheduled_event_attributes.activity_type.name
                elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                    a = e.activity_task_started_event_attributes
                    # run_agent: the single-turn path; model_turn: a turn of the tool loop.
                    if scheduled.get(a.scheduled_event_id) in ("run_agent", "model_turn"):
                        ran_on[int(a.identity.split("@", 1)[0])] += 1
        assert sum(ran_on.values()) == TASKS
        assert set(ran_on) == {w1.pid, w2.pid}, ran_on
        print(f"agent turns per worker: {dict(ran_on)}")

        # One idempotency store: the same key and body on both APIs, one after the other and at once.
        body = {"title": "Once", "description": "hello"}
        key = str(uuid.uuid4())
        a = await apis[0].post("/v1/automation/tasks", json=body, headers={**h, "Idempotency-Key": key})
        b = await apis[1].post("/v1/automation/tasks", json=body, headers={**h, "Idempotency-Key": key})
        assert a.status_code == b.status_code == 201, (a.text, b.text)
        assert b.headers.get("idempotent-replayed") == "true"
        assert a.json()["task_id"] == b.json()["task_id"]
        key = str(uuid.uuid4())
        both = await asyncio.gather(
            *(api.post("/v1/automation/tasks", json=body, headers={**h, "Idempotency-Key": key}) for api in apis)
        )
        created = {r.json()["task_id"] for r in both if r.status_code == 201}
        assert len(created) == 1 and all(r.status_code in (201, 409) for r in both), [r.text for r in both]
        listed = (await apis[0].get("/v1/automation/tasks", params={"limit": 100}, headers=h)).json()["data"]
        assert len(listed) == TASKS + 2

        # One rate limit: a free user's window counts requests on both APIs.
        free = await new_key(db, "free")
        r1 = await apis[0].get("/v1/automation/me", headers=free)
        r2 = await apis[1].get("/v1/automation/me", headers=free)
        limit = int(r1.headers["x-ratelimit-limit"])
        assert limit == 60
        assert int(r2.headers["x-ratelimit-remaining"]) == int(r1.headers["x-ratelimit-remaining"]) - 1
        statuses = Counter()
        for i in range(limit):
            statuses[(await apis[i % 2].get("/v1/automation/me", headers=free)).status_code] += 1
        # 2 + 58 allowed, then both APIs refuse.
        assert statuses == {200: limit - 2, 429: 2}, statuses
        for api in apis:
            r = await api.get("/v1/automation/me", headers=free)
            assert r.status_code == 429 and r.json()["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
    finally:
        for api in apis:
            await api.aclose()

