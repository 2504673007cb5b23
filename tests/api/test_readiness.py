"""``/readyz`` tells the truth about whether a create would work: on a fresh Temporal namespace
without CodeTether's search attributes it is not 200 and names the fix; once the API (or the
worker) has registered them, creates work without ``codetether migrate --temporal``."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import httpx
import pytest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from google.protobuf.duration_pb2 import Duration

from codetether.core.temporal import connect, missing_search_attributes, register_search_attributes_if_allowed
from tests.conftest import make_settings
from codetether.tasks.contracts import SEARCH_ATTRIBUTES

pytestmark = pytest.mark.e2e


async def _fresh_namespace(client: Client) -> str:
    name = f"fresh-{uuid.uuid4().hex[:10]}"
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=name,
            workflow_execution_retention_period=Duration(seconds=int(timedelta(days=1).total_seconds())),
        )
    )
    return name


def _app(settings, db, client=None):
    from codetether.api.app import create_app

    app = create_app(settings, db=db, temporal_client=client)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver", timeout=30)


async def test_readyz_names_the_fix_when_search_attributes_are_missing(temporal_env, temporal_address, database_url, db, tmp_path):
    namespace = await _fresh_namespace(temporal_env.client)
    settings = make_settings(temporal_address, database_url, tmp_path, temporal_namespace=namespace)
    # A client handed in from outside skips the API's own registration: the state an operator
    # reaches on a server that refuses to add search attributes (Temporal Cloud).
    client = await connect(settings)
    assert sorted(await missing_search_attributes(client)) == sorted(k.name for k in SEARCH_ATTRIBUTES)
    async with _app(settings, db, client) as http:
        r = await http.get("/readyz")
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "not_ready" and body["status"] == 503
    assert "codetether migrate --temporal" in body["detail"]
    assert body["checks"]["database"] == "ok" and body["checks"]["temporal"] == "ok"
    assert body["checks"]["search_attributes"].startswith("missing: ")


async def test_api_registers_missing_search_attributes_then_creates_work(
    temporal_env, temporal_address, database_url, db, tmp_path, make_user, caplog
):
    namespace = await _fresh_namespace(temporal_env.client)
    settings = make_settings(temporal_address, database_url, tmp_path, temporal_namespace=namespace)
    user = await make_user()
    caplog.set_level(logging.INFO, logger="codetether.api")
    async with _app(settings, db) as http:
        r = await http.get("/readyz")
        assert r.status_code == 200, r.text
        assert r.json()["checks"] == {"database": "ok", "temporal": "ok", "search_attributes": "ok"}
        created = await http.post(
            "/v1/automation/tasks", headers=user.headers, json={"title": "fresh namespace", "prompt": "hi"}
        )
        assert created.status_code == 201, created.text
    assert any("registered search attributes" in rec.getMessage() for rec in caplog.records)
    client = await connect(settings)
    assert await missing_search_attributes(client) == []


async def test_worker_registration_is_idempotent(temporal_env, temporal_address, database_url, tmp_path):
    namespace = await _fresh_namespace(temporal_env.client)
    settings = make_settings(temporal_address, database_url, tmp_path, temporal_namespace=namespace)
    client = await connect(settings)
    log = logging.getLogger("codetether.worker")
    assert await register_search_attributes_if_allowed(client, log) is True
    assert await register_search_attributes_if_allowed(client, log) is True
    assert await missing_search_attributes(client) == []


async def test_readyz_unknown_namespace_is_not_ready(temporal_env, temporal_address, database_url, db, tmp_path):
    settings = make_settings(temporal_address, database_url, tmp_path, temporal_namespace=f"absent-{uuid.uuid4().hex[:8]}")
    async with _app(settings, db) as http:
        r = await http.get("/readyz")
    assert r.status_code == 503, r.text
    assert r.json()["code"] == "not_ready"
