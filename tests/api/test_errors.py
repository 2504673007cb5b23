"""Every error is RFC 9457 problem+json with a stable code and the request id; X-Request-ID
follows a request into the logs' context and into the task's workflow."""

from __future__ import annotations

import logging

import pytest

from codetether.core.logging import request_id_var
from codetether.core.models import Task
from tests.conftest import running_stack

PROBLEM = "application/problem+json"


@pytest.fixture
async def api(settings, temporal_env, db):
    async with running_stack(settings, temporal_env.client, db, worker=False) as s:
        yield s


def assert_problem(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == status and body["code"] == code
    assert body["type"].startswith("https://") and body["title"] and body["detail"]
    assert body["request_id"] == r.headers["x-request-id"]
    assert "Traceback" not in r.text
    return body


async def test_401_without_and_with_a_bad_token(api):
    r = await api.http.get("/v1/automation/me")
    assert_problem(r, 401, "unauthenticated")
    # No credentials at all: the bare challenge (RFC 6750 section 3.1).
    assert r.headers["www-authenticate"] == 'Bearer realm="codetether"'
    r = await api.http.get("/v1/automation/tasks", headers={"Authorization": "Bearer ct_bogus"})
    assert_problem(r, 401, "unauthenticated")
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    r = await api.http.get("/v1/automation/tasks", headers={"Authorization": "Bearer some.jwt.like"})
    assert_problem(r, 401, "unauthenticated")
    assert r.headers["www-authenticate"].startswith("Bearer")


async def test_403_insufficient_scope(api, make_user):
    reader = await make_user(scopes=["tasks:read"])
    r = await api.http.post("/v1/automation/tasks", json={"title": "t", "prompt": "p"}, headers=reader.headers)
    body = assert_problem(r, 403, "insufficient_scope")
    assert body["required_scopes"] == ["tasks:write"]
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]


async def test_404_route_and_resource_and_405(api, user):
    assert_problem(await api.http.get("/no/such/route"), 404, "not_found")
    assert_problem(await api.http.get("/v1/automation/tasks/task_missing", headers=user.headers), 404, "task_not_found")
    r = await api.http.put("/v1/automation/me", headers=user.headers)
    assert_problem(r, 405, "method_not_allowed")
    assert "GET" in r.headers["allow"]


async def test_422_validation_lists_the_fields(api, user):
    r = await api.http.post(
        "/v1/automation/tasks", json={"title": "", "prompt": "p", "surprise": 1}, headers=user.headers
    )
    body = assert_problem(r, 422, "validation_error")
    fields = {e["field"] for e in body["errors"]}
    assert {"title", "surprise"} <= fields
    assert all({"field", "message", "type"} <= set(e) for e in body["errors"])
    r = await api.http.get("/v1/automation/tasks", params={"limit": 1000}, headers=user.headers)
    body = assert_problem(r, 422, "validation_error")
    assert body["errors"][0]["field"] == "limit" and body["errors"][0]["location"] == "query"


async def test_malformed_json_is_400(api, user):
    r = await api.http.post(
        "/v1/automation/tasks",
        content=b'{"title": "t", "prompt": ',
        headers={**user.headers, "Content-Type": "application/json"},
    )
    assert_problem(r, 400, "malformed_json")


async def test_413_and_415(api, user):
    huge = b'{"title": "t", "prompt": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    r = await api.http.post("/v1/automation/tasks", content=huge, headers={**user.headers, "Content-Type": "application/json"})
    assert_problem(r, 413, "payload_too_large")

    async def chunks():
        for _ in range(20):
            yield b"x" * 100_000

    # Without a Content-Length the body is counted as it arrives.
    r = await api.http.post("/v1/automation/tasks", content=chunks(), headers={**user.headers, "Content-Type": "application/json"})
    assert_problem(r, 413, "payload_too_large")
    r = await api.http.post(
        "/v1/automation/tasks", content=b"title=t", headers={**user.headers, "Content-Type": "text/plain"}
    )
    assert_problem(r, 415, "unsupported_media_type")


async def test_unexpected_errors_are_500_problems_without_internals(api, user, caplog):
    seen: dict[str, str | None] = {}

    async def boom() -> None:
        seen["request_id"] = request_id_var.get()
        raise RuntimeError("secret internals at /srv/app.py line 42")

    api.app.add_api_route("/v1/test-boom", boom, methods=["GET"])
    with caplog.at_level(logging.ERROR):
        r = await api.http.get("/v1/test-boom", headers={**user.headers, "X-Request-ID": "boom-1"})
    body = assert_problem(r, 500, "internal_error")
    assert "secret" not in r.text and "app.py" not in r.text
    assert body["request_id"] == "boom-1" == seen["request_id"]
    # The edge still did its job on the 500: rate-limit headers are there.
    assert "x-ratelimit-limit" in r.headers
    assert any("unhandled error" in rec.getMessage() for rec in caplog.records)


async def test_request_id_echo_and_generation(api):
    r = await api.http.get("/healthz", headers={"X-Request-ID": "zap-123.abc:1"})
    assert r.headers["x-request-id"] == "zap-123.abc:1"
    for insane in ("has spaces", "x" * 129, "semi;colon"):
        r = await api.http.get("/healthz", headers={"X-Request-ID": insane})
        assert r.headers["x-request-id"] != insane and r.headers["x-request-id"].startswith("req_")
    r = await api.http.get("/healthz")
    assert r.headers["x-request-id"].startswith("req_")


async def test_request_id_reaches_the_task_and_its_workflow(api, user):
    r = await api.http.post(
        "/v1/automation/tasks",
        json={"title": "traced", "prompt": "p"},
        headers={**user.headers, "X-Request-ID": "trace-abc-1"},
    )
    assert r.status_code == 201 and r.headers["x-request-id"] == "trace-abc-1"
    task_id = r.json()["task_id"]
    async with api.db.session() as s:
        row = await s.get(Task, task_id)
    assert row.request_id == "trace-abc-1"
    desc = await api.client.get_workflow_handle(task_id).describe()
    memo = await desc.memo()
    assert memo["request_id"] == "trace-abc-1"
    await api.client.get_workflow_handle(task_id).terminate("test done")
