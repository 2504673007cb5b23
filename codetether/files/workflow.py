"""FileCleanupWorkflow: what the file cleanup schedule starts (``codetether/files/schedule.py``).

One activity deletes expired files, bytes first then rows, in batches; the workflow runs batches
until one comes back short, so a backlog is cleared in one run.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from codetether.files.activities import FileActivities
    from codetether.files.contracts import FILE_CLEANUP_WORKFLOW, CleanupFilesInput, CleanupFilesResult

BATCH = 1000
MAX_BATCHES = 50


@workflow.defn(name=FILE_CLEANUP_WORKFLOW)
class FileCleanupWorkflow:
    @workflow.run
    async def run(self, inp: CleanupFilesInput) -> CleanupFilesResult:
        total = 0
        for _ in range(MAX_BATCHES):
            done: CleanupFilesResult = await workflow.execute_activity_method(
                FileActivities.cleanup_expired_files,
                CleanupFilesInput(limit=inp.limit or BATCH),
                start_to_close_timeout=timedelta(minutes=10),
                retry_policy=RetryPolicy(maximum_attempts=3, maximum_interval=timedelta(seconds=30)),
            )
            total += done.deleted
            if done.deleted < (inp.limit or BATCH):
                break
        return CleanupFilesResult(deleted=total)
