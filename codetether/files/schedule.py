"""The Temporal Schedule that deletes expired files (``FileCleanupWorkflow`` every
``files_cleanup_interval_seconds``).

Created (or brought up to date) by every worker at start and by ``codetether migrate --temporal``;
idempotent, so any number of workers may do it. Overlapping runs are skipped.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    SchedulePolicy,
    ScheduleOverlapPolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from codetether.core.config import Settings
from codetether.files.contracts import CLEANUP_SCHEDULE_PREFIX, FILE_CLEANUP_WORKFLOW, CleanupFilesInput

log = logging.getLogger(__name__)


def cleanup_schedule_id(settings: Settings) -> str:
    return f"{CLEANUP_SCHEDULE_PREFIX}-{settings.temporal_task_queue}"


def cleanup_schedule(settings: Settings) -> Schedule:
    schedule_id = cleanup_schedule_id(settings)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            FILE_CLEANUP_WORKFLOW,
            CleanupFilesInput(),
            id=f"{schedule_id}-run",
            task_queue=settings.temporal_task_queue,
            execution_timeout=timedelta(hours=1),
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=settings.files_cleanup_interval_seconds))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_cleanup_schedule(client: Client, settings: Settings) -> str:
    """Creates the cleanup schedule, or updates an existing one to the current settings."""
    schedule_id = cleanup_schedule_id(settings)
    schedule = cleanup_schedule(settings)
    try:
        await client.create_schedule(schedule_id, schedule)
        log.info("created the file cleanup schedule %s", schedule_id)
    except ScheduleAlreadyRunningError:

        def _update(_inp: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id).update(_update)
    return schedule_id
