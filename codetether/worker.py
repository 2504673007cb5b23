"""The CodeTether worker: builds the activities with their dependencies and runs them with the
workflows on the task queue. ``codetether worker`` (or ``python worker.py`` at the repository root).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import uuid
from contextlib import AsyncExitStack
from datetime import timedelta

import httpx
from temporalio.client import Client
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions
from temporalio.worker import Worker

from codetether.agent.activities import AgentActivities
from codetether.webhooks.budget_alerts import BudgetAlerts
from codetether.webhooks.sponsorship_alerts import SponsorshipAlerts
from codetether.notifications.activities import EmailActivities, EmailNotifier
from codetether.agent.workspace.sandbox import Sandbox
from codetether.agent.workspace.activities import WorkspaceActivities
from codetether.tasks.activities import TaskActivities
from codetether.webhooks.activities import WebhookActivities, WebhookDispatcher
from codetether.agent.catalog import ModelCatalog
from codetether.core.config import Settings, get_settings
from codetether.core.db import Database
from codetether.tasks.events import CompositeSink, EventRecorder, EventSink
from codetether.core.logging import setup_logging
from codetether.tasks.reconcile import RECONCILE_EVERY, reconcile_orphans
from codetether.core.telemetry import LogContextInterceptor, worker_runtime
from codetether.core.temporal import connect, register_search_attributes_if_allowed
from codetether.concurrency.workflow import ConcurrencyWorkflow
from codetether.webhooks.workflow import DeliveryWorkflow
from codetether.notifications.workflow import EmailWorkflow
from codetether.tasks.workflow import TaskWorkflow
from codetether.files.activities import FileActivities
from codetether.files.schedule import ensure_cleanup_schedule
from codetether.files.storage import FileStorage
from codetether.files.wiring import storage_from_settings
from codetether.files.workflow import FileCleanupWorkflow
from codetether.partners.activities import GuessActivities
from codetether.partners.workflow import GuessWorkflow

log = logging.getLogger("codetether.worker")

WORKFLOWS = [TaskWorkflow, ConcurrencyWorkflow, DeliveryWorkflow, EmailWorkflow, FileCleanupWorkflow, GuessWorkflow]


def build_sink(settings: Settings, db: Database, client: Client) -> EventSink:
    """The event sink that fans events out to webhook destinations and notification email."""
    return CompositeSink(WebhookDispatcher(db, client, settings), EmailNotifier(client, settings))


def activity_list(
    settings: Settings, db: Database, client: Client, http_client: httpx.AsyncClient, workspace: WorkspaceActivities | None = None,
    storage: FileStorage | None = None,
) -> list:
    recorder = EventRecorder(db, build_sink(settings, db, client), settings=settings)
    catalog = ModelCatalog.from_settings(settings)
    tasks = TaskActivities(settings=settings, recorder=recorder, catalog=catalog, client=client, http_client=http_client)
    budget_alerts, sponsorship_alerts = BudgetAlerts(db, settings, client), SponsorshipAlerts(db, settings, client)

    async def after_settle(user_id: str) -> None:
        await budget_alerts.check(user_id)
        await sponsorship_alerts.check(user_id)

    # The worker's workspace tool runner: a turn for a workspace held here runs its read-only calls.
    agent = AgentActivities(settings=settings, db=db, recorder=recorder, catalog=catalog, http_client=http_client,
                            after_settle=after_settle, after_refusal=sponsorship_alerts.refused,
                            tool_calls=workspace.tool_calls if workspace is not None else None,
                            own_queue=workspace.task_queue if workspace is not None else None)
    webhooks = WebhookActivities(settings=settings, db=db)
    email = EmailActivities(settings=settings, db=db)
    files = FileActivities(settings=settings, db=db, storage=storage or storage_from_settings(settings))
    guesses = GuessActivities(settings=settings, catalog=catalog, http_client=http_client)
    shared = [tasks.run_agent, tasks.record_event, tasks.record_events, tasks.request_slot, agent.model_turn,
              agent.raise_budget, webhooks.attempt_delivery, email.send_task_email, files.fetch_attachments,
              files.cleanup_expired_files, guesses.guess_task]
    if workspace is not None:
        shared.append(workspace.prepare_workspace)
    return shared


def workspace_activities(settings: Settings, db: Database, client: Client, http_client: httpx.AsyncClient,
                         queue: str, storage: FileStorage | None = None) -> WorkspaceActivities:
    recorder = EventRecorder(db, build_sink(settings, db, client), settings=settings)
    return WorkspaceActivities(settings=settings, db=db, recorder=recorder, sandbox=Sandbox(settings), task_queue=queue,
                               http_client=http_client, storage=storage or storage_from_settings(settings))


class WorkerGroup:
    """The worker on the shared queue plus this process's own workspace queue (tool calls of the
    tasks whose workspace it holds). Runs and stops as one."""

    def __init__(self, main: Worker, own: Worker, workspace: WorkspaceActivities) -> None:
        self.main, self.own, self.workspace = main, own, workspace

    async def run(self) -> None:
        await asyncio.gather(self.main.run(), self.own.run())

    async def shutdown(self) -> None:
        await asyncio.gather(self.main.shutdown(), self.own.shutdown(), return_exceptions=True)

    async def __aenter__(self) -> "WorkerGroup":
        self._task = asyncio.create_task(self.run())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.shutdown()
        try:
            await self._task
        except Exception:  # noqa: BLE001 - shutdown errors are logged by the SDK
            pass


# The sandbox still guards the standard library (time, random, I/O) in workflow code, but our own
# packages pass through: they are imported once per process instead of once per workflow
# instance, which was a large share of a short task's worker CPU. They hold no mutable module
# state (the workflow files import nothing with side effects), so sharing them is safe.
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules("codetether")
)


def all_workflows() -> list:
    return list(WORKFLOWS)


def build_worker(
    settings: Settings, client: Client, db: Database, http_client: httpx.AsyncClient, *, task_queue: str | None = None
) -> WorkerGroup:
    queue = task_queue or settings.temporal_task_queue
    own_queue = f"{queue}.ws.{uuid.uuid4().hex[:12]}"
    # The one file storage of this process (the data dir or S3-compatible, by the settings).
    storage = storage_from_settings(settings)
    workspace = workspace_activities(settings, db, client, http_client, own_queue, storage)
    own = Worker(
        client,
        task_queue=own_queue,
        activities=[workspace.run_tool, workspace.checkpoint_workspace, workspace.finalize_workspace,
                    workspace.keep_plan, workspace.cleanup_workspace],
        max_concurrent_activities=max(settings.sandbox_slots * 2, 8),
        max_heartbeat_throttle_interval=timedelta(seconds=0.5),
        default_heartbeat_throttle_interval=timedelta(seconds=0.5),
        graceful_shutdown_timeout=timedelta(seconds=5),
        interceptors=[LogContextInterceptor()],
    )
    main = Worker(
        client,
        task_queue=queue,
        workflows=all_workflows(),
        activities=activity_list(settings, db, client, http_client, workspace, storage),
        max_concurrent_workflow_task_polls=settings.worker_workflow_pollers,
        max_concurrent_activity_task_polls=settings.worker_activity_pollers,
        max_cached_workflows=settings.worker_max_cached_workflows,
        workflow_runner=WORKFLOW_RUNNER,
        # Heartbeats reach the server at least every 0.5 s, so a cancel reaches the agent fast.
        max_heartbeat_throttle_interval=timedelta(seconds=0.5),
        default_heartbeat_throttle_interval=timedelta(seconds=0.5),
        graceful_shutdown_timeout=timedelta(seconds=5),
        interceptors=[LogContextInterceptor()],
    )
    return WorkerGroup(main, own, workspace)


async def run_worker(settings: Settings | None = None, stop: asyncio.Event | None = None) -> None:
    settings = settings or get_settings()
    stop = stop or asyncio.Event()
    async with AsyncExitStack() as stack:
        db = Database.from_settings(settings)
        stack.push_async_callback(db.dispose)
        http_client = httpx.AsyncClient(follow_redirects=False, timeout=httpx.Timeout(600.0, connect=10.0))
        stack.push_async_callback(http_client.aclose)
        client = await connect(settings, runtime=worker_runtime(settings))
        # Workflows upsert these attributes; a fresh self-hosted namespace gets them here.
        await register_search_attributes_if_allowed(client, log)
        try:
            await ensure_cleanup_schedule(client, settings)
        except Exception:  # noqa: BLE001 - the next worker start tries again; files then expire late
            log.exception("creating the file cleanup schedule failed")
        worker = build_worker(settings, client, db, http_client)
        log.info("worker polling %s (and %s for its workspaces) on %s", settings.temporal_task_queue,
                 worker.workspace.task_queue, settings.temporal_address)
        sandbox = worker.workspace.sandbox
        (log.info if sandbox.available else log.warning)("%s", sandbox.describe())
        async with worker:
            reconciler = asyncio.create_task(reconcile_forever(db, client, settings, stop))
            await stop.wait()
            reconciler.cancel()
        log.info("worker stopped")


async def reconcile_forever(db: Database, client: Client, settings: Settings, stop: asyncio.Event) -> None:
    """Every minute, starts the workflows of tasks whose API died before starting them."""
    while not stop.is_set():
        try:
            await reconcile_orphans(db, client, settings)
        except Exception:  # noqa: BLE001 - Temporal or the database may be briefly away
            log.exception("reconciling orphaned tasks failed")
        try:
            await asyncio.wait_for(stop.wait(), timeout=RECONCILE_EVERY)
        except asyncio.TimeoutError:
            pass


def main() -> None:
    settings = get_settings()
    setup_logging(settings)
    stop = asyncio.Event()

    async def _main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, stop)

    asyncio.run(_main())


if __name__ == "__main__":
    main()
