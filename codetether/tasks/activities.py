"""Task activities: one agent turn, recording transitions, asking for a concurrency slot.

Built once per worker by ``codetether/worker.py`` with its dependencies (settings, database, model catalog,
Temporal client, HTTP client, event sink) and registered by method.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta

import httpx
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.exceptions import ApplicationError

from codetether.agent.backends.base import AgentBackend, ProviderError
from codetether.agent.backends.factory import backend_for
from codetether.agent.catalog import ModelCatalog, ModelSpec
from codetether.core.config import Settings
from codetether.tasks.events import EventRecorder, NewEvent
from codetether.core.ids import iso, new_id, utcnow
from codetether.agent.contracts import MODEL_NOT_CONFIGURED, PROVIDER_CLIENT_ERROR, PROVIDER_TRANSIENT_ERROR
from codetether.concurrency.contracts import (
    CONCURRENCY_WORKFLOW,
    RELEASE_SLOT_SIGNAL,
    REQUEST_SLOT_SIGNAL,
    ConcurrencyInput,
    SlotRelease,
    SlotRequest,
    SlotRequestInput,
    concurrency_workflow_id,
)
from codetether.tasks.contracts import (
    ErrorCode,
    RecordEventInput,
    RecordEventResult,
    RecordEventsInput,
    RecordEventsResult,
    RunAgentInput,
    RunAgentResult,
    TaskChanges,
)

log = logging.getLogger(__name__)

HEARTBEAT_EVERY = 0.25
PROGRESS_EVERY = 1.0


class ProgressReporter:
    """Turns a chatty stream of progress callbacks into at most one event per second."""

    def __init__(self, recorder: EventRecorder, task_id: str, run_id: str, every: float = PROGRESS_EVERY) -> None:
        self._recorder = recorder
        self._task_id = task_id
        self._run_id = run_id
        self._every = every
        self._last = 0.0
        self.reported = 0

    async def __call__(self, message: str, percent: int | None) -> None:
        now = time.monotonic()
        if now - self._last < self._every:
            return
        self._last = now
        self.reported += 1
        progress = {"message": message[-500:], "percent": percent, "updated_at": iso(utcnow())}
        try:
            await self._recorder.record_progress(self._task_id, self._run_id, progress)
        except Exception:  # noqa: BLE001 - progress is best effort; the turn must go on
            log.exception("recording progress of %s failed", self._task_id)


def available_model(catalog: ModelCatalog, model: str, attempt: int) -> ModelSpec:
    """The model's spec, or a non-retryable failure when this worker cannot run it."""
    spec = catalog.resolve(model)
    if spec is None or not spec.available:
        raise ApplicationError(
            f"model {model!r} is not configured on this worker",
            {"code": ErrorCode.MODEL_UNAVAILABLE, "attempt": attempt},
            type=MODEL_NOT_CONFIGURED,
            non_retryable=True,
        )
    return spec


def provider_failure(err: ProviderError, attempt: int) -> ApplicationError:
    """A provider's refusal as a Temporal failure: retried by Temporal when transient (429/5xx,
    overloaded, a broken stream) no sooner than the provider asked (``Retry-After`` becomes the
    next retry's delay); final, with its stable code, when it can never succeed."""
    code = err.code or (ErrorCode.PROVIDER_UNAVAILABLE if err.retryable else ErrorCode.PROVIDER_REJECTED)
    return ApplicationError(
        str(err),
        {"code": code, "attempt": attempt, "status": err.status},
        type=PROVIDER_TRANSIENT_ERROR if err.retryable else PROVIDER_CLIENT_ERROR,
        non_retryable=not err.retryable,
        next_retry_delay=timedelta(seconds=err.retry_after) if err.retryable and err.retry_after else None,
    )


def cached_backend(cache: dict[str, AgentBackend], kind: str, http_client: httpx.AsyncClient) -> AgentBackend:
    """One backend per provider kind and activity instance (they hold SDK clients)."""
    if kind not in cache:
        cache[kind] = backend_for(kind, http_client=http_client)
    return cache[kind]


class TaskActivities:
    def __init__(
        self,
        *,
        settings: Settings,
        recorder: EventRecorder,
        catalog: ModelCatalog,
        client: Client,
        http_client: httpx.AsyncClient,
    ) -> None:
        self.settings = settings
        self.recorder = recorder
        self.catalog = catalog
        self.client = client
        self.http_client = http_client
        self._backends: dict[str, AgentBackend] = {}

    def _backend(self, kind: str) -> AgentBackend:
        return cached_backend(self._backends, kind, self.http_client)

    @activity.defn
    async def run_agent(self, inp: RunAgentInput) -> RunAgentResult:
        attempt = activity.info().attempt
        spec = available_model(self.catalog, inp.model, attempt)
        reporter = ProgressReporter(self.recorder, inp.task_id, inp.run_id)
        beat = asyncio.create_task(_heartbeat_forever())
        try:
            outcome = await self._backend(spec.kind).run_turn(spec, inp.messages, reporter)
        except ProviderError as err:
            raise provider_failure(err, attempt) from None
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
        return RunAgentResult(
            kind="question" if outcome.question is not None else "final",
            new_messages=outcome.new_messages,
            text=outcome.text,
            question=outcome.question,
            tool_call_id=outcome.tool_call_id,
            attempt=attempt,
        )

    @activity.defn
    async def record_event(self, inp: RecordEventInput) -> RecordEventResult:
        event = await self.recorder.record(
            task_id=inp.task_id,
            run_id=inp.run_id,
            event_id=inp.event_id,
            event_type=inp.event_type,
            changes=inp.changes,
            occurred_at=inp.occurred_at,
            details=inp.details,
        )
        return RecordEventResult(seq=event.seq if event is not None else None, recorded=event is not None)

    @activity.defn
    async def record_events(self, inp: RecordEventsInput) -> RecordEventsResult:
        """Run as a local activity by the task workflow: each event is idempotent by its id, so
        a retry (or a replay after a worker died mid-task) neither loses nor repeats one."""
        events = await self.recorder.record_many(
            inp.task_id,
            inp.events[0].run_id if inp.events else "",
            [NewEvent(e.event_id, e.event_type, e.changes, e.occurred_at, e.details) for e in inp.events],
        )
        recorded = sum(e is not None for e in events)
        if inp.release_slot_owner is not None:
            await self._release_slot(inp.release_slot_owner, inp.task_id)
        return RecordEventsResult(recorded=recorded)

    async def _release_slot(self, owner_id: str, task_id: str) -> None:
        handle = self.client.get_workflow_handle(concurrency_workflow_id(owner_id))
        try:
            # Releasing twice is harmless: the second finds the task neither holding nor waiting.
            await handle.signal(RELEASE_SLOT_SIGNAL, SlotRelease(task_id=task_id))
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            # The owner's concurrency workflow is gone (or never started): nothing is held.

    @activity.defn
    async def request_slot(self, inp: SlotRequestInput) -> None:
        # Signal-with-start by name: the concurrency workflow is reached by type and id only.
        await self.client.start_workflow(
            CONCURRENCY_WORKFLOW,
            ConcurrencyInput(owner_id=inp.owner_id, limit=inp.limit),
            id=concurrency_workflow_id(inp.owner_id),
            task_queue=self.settings.temporal_task_queue,
            start_signal=REQUEST_SLOT_SIGNAL,
            start_signal_args=[
                SlotRequest(
                    task_id=inp.task_id, priority=inp.priority, requested_at=inp.requested_at, limit=inp.limit
                )
            ],
        )


async def _heartbeat_forever() -> None:
    # Frequent heartbeats are how a cancel request reaches a streaming agent quickly. The first
    # waits one interval: a turn shorter than that costs the server no heartbeat at all.
    while True:
        await asyncio.sleep(HEARTBEAT_EVERY)
        activity.heartbeat()
