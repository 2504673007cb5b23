"""Rate limits as a platform sees them: per-user tier limits, per-IP limits, headers, 429s, Redis."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import redis.asyncio as aioredis

from codetether.api.edge.ratelimit import IP_LIMIT_PER_MINUTE, UNLIMITED_HEADER_VALUE
from tests.conftest import make_settings, running_stack

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def api(settings, temporal_env, db):
    async with running_stack(settings, temporal_env.client, db, worker=False) as s:
        yield s.http


def _assert_limit_headers(r: httpx.Response, limit: int) -> None:
    assert r.headers["x-ratelimit-limit"] == str(limit)
    remaining = int(r.headers["x-ratelimit-remaining"])
    assert 0 <= remaining <= limit
    reset = int(r.headers["x-ratelimit-reset"])
    assert time.time() - 1 <= reset <= time.time() + 61


async def test_free_user_exactly_60_of_80_parallel(api, make_user):
    free = await make_user("free")
    results = await asyncio.gather(*(api.get("/v1/automation/me", headers=free.headers) for _ in range(80)))
    ok = [r for r in results if r.status_code == 200]
    limited = [r for r in results if r.status_code == 429]
    assert len(ok) == 60 and len(limited) == 20, sorted(r.status_code for r in results)
    for r in ok:
        _assert_limit_headers(r, 60)
    assert sorted(int(r.headers["x-ratelimit-remaining"]) for r in ok)[0] == 0
    for r in limited:
        assert r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert body["code"] == "rate_limited" and body["status"] == 429
        assert body["request_id"] == r.headers["x-request-id"]
        assert 1 <= int(r.headers["retry-after"]) <= 60
        _assert_limit_headers(r, 60)
        assert r.headers["x-ratelimit-remaining"] == "0"


async def test_headers_on_authenticated_errors_and_me_reports_them(api, make_user):
    pro = await make_user("pro")
    r = await api.get("/v1/automation/tasks/task_doesnotexist", headers=pro.headers)
    assert r.status_code == 404
    _assert_limit_headers(r, 300)
    r = await api.get("/v1/automation/tasks", params={"limit": 0}, headers=pro.headers)
    assert r.status_code == 422
    _assert_limit_headers(r, 300)
    r = await api.post("/v1/automation/tasks", json={"title": ""}, headers=pro.headers)
    assert r.status_code == 422
    _assert_limit_headers(r, 300)
    r = await api.get("/v1/automation/me", headers=pro.headers)
    assert r.status_code == 200
    _assert_limit_headers(r, 300)
    info = r.json()["rate_limit"]
    # Three calls before this one, this one included: 296 left.
    assert info == {
        "limit": 300,
        "remaining": int(r.headers["x-ratelimit-remaining"]),
        "reset": int(r.headers["x-ratelimit-reset"]),
    }
    assert info["remaining"] == 296


async def test_scope_error_is_counted_too(api, make_user):
    free = await make_user("free", scopes=["tasks:read"])
    r = await api.post("/v1/automation/tasks", json={"title": "t", "prompt": "p"}, headers=free.headers)
    assert r.status_code == 403
    assert r.json()["code"] == "insufficient_scope"
    _assert_limit_headers(r, 60)
    assert r.headers["x-ratelimit-remaining"] == "59"


async def test_enterprise_is_unlimited(api, make_user):
    ent = await make_user("enterprise")
    results = await asyncio.gather(*(api.get("/v1/automation/me", headers=ent.headers) for _ in range(350)))
    assert {r.status_code for r in results} == {200}
    me = results[0].json()
    assert me["tier"] == "enterprise"
    assert me["rate_limit"]["limit"] is None and me["rate_limit"]["remaining"] is None
    assert me["rate_limit"]["reset"] >= int(time.time())
    assert results[0].headers["x-ratelimit-limit"] == str(UNLIMITED_HEADER_VALUE)
    assert me["concurrent_tasks_limit"] is None


async def test_users_do_not_share_a_limit(api, make_user):
    a, b = await make_user("free"), await make_user("free")
    ra = await asyncio.gather(*(api.get("/v1/automation/me", headers=a.headers) for _ in range(61)))
    assert sum(r.status_code == 429 for r in ra) == 1
    rb = await api.get("/v1/automation/me", headers=b.headers)
    assert rb.status_code == 200 and rb.headers["x-ratelimit-remaining"] == "59"


async def test_unauthenticated_calls_are_limited_per_ip(api):
    results = await asyncio.gather(*(api.get("/v1/automation/me") for _ in range(IP_LIMIT_PER_MINUTE + 5)))
    statuses = [r.status_code for r in results]
    assert statuses.count(401) == IP_LIMIT_PER_MINUTE and statuses.count(429) == 5
    unauth = next(r for r in results if r.status_code == 401)
    assert unauth.headers["www-authenticate"].startswith("Bearer")
    _assert_limit_headers(unauth, IP_LIMIT_PER_MINUTE)
    limited = next(r for r in results if r.status_code == 429)
    assert limited.json()["code"] == "rate_limited" and int(limited.headers["retry-after"]) >= 1
    # Another client address has its own budget; probes are never limited.
    other = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api._transport.app, client=("10.1.2.3", 4000)), base_url="http://testserver"
    )
    async with other:
        assert (await other.get("/v1/automation/me")).status_code == 401
    assert (await api.get("/healthz")).status_code == 200


async def test_invalid_tokens_count_against_the_ip(api):
    bad = {"Authorization": "Bearer ct_not_a_real_key"}
    results = await asyncio.gather(*(api.get("/v1/automation/me", headers=bad) for _ in range(IP_LIMIT_PER_MINUTE + 3)))
    statuses = [r.status_code for r in results]
    assert statuses.count(401) == IP_LIMIT_PER_MINUTE and statuses.count(429) == 3


@pytest.mark.postgres
async def test_redis_shares_one_limit_between_processes(temporal_address, database_url, tmp_path, temporal_env, db, make_user):
    """Two API apps (as two processes would be) on one Redis: still exactly 60 of 80 pass."""
    r = aioredis.from_url(REDIS_URL)
    try:
        assert await r.ping()
    finally:
        await r.aclose()
    settings = make_settings(temporal_address, database_url, tmp_path, redis_url=REDIS_URL)
    free = await make_user("free")
    async with running_stack(settings, temporal_env.client, db, worker=False) as one:
        async with running_stack(settings, temporal_env.client, db, worker=False) as two:
            calls = [c.http.get("/v1/automation/me", headers=free.headers) for c in (one, two) for _ in range(40)]
            results = await asyncio.gather(*calls)
    statuses = [x.status_code for x in results]
    assert statuses.count(200) == 60 and statuses.count(429) == 20, statuses

