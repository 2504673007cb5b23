"""Task artifacts in the database: storing (idempotent on the id, so a retried activity does not
duplicate one), their public description, and the owner's download of one. Served by
``codetether/api/rest/routes/artifacts.py`` and the console (``codetether/api/console/artifacts.py``)."""

from __future__ import annotations

import hashlib

from codetether.core.db import Database, load_owned
from codetether.core.errors import ServiceError
from codetether.core.ids import utcnow
from codetether.core.models import TaskArtifact

CHECKPOINT_KIND = "checkpoint"
PUBLIC_KINDS = ("patch", "plan", "findings", "output", "file")
PATCH_KIND = "patch"


def artifact_public(row: TaskArtifact) -> dict:
    return {"id": row.id, "name": row.name, "kind": row.kind, "size": row.size, "sha256": row.sha256}


async def store_artifact(
    db: Database,
    *,
    artifact_id: str,
    task_id: str,
    user_id: str,
    run_id: str,
    name: str,
    kind: str,
    content: bytes,
    media_type: str = "text/plain; charset=utf-8",
) -> TaskArtifact:
    async with db.write_session() as s:
        existing = await s.get(TaskArtifact, artifact_id)
        if existing is not None:
            return existing
        row = TaskArtifact(
            id=artifact_id,
            task_id=task_id,
            user_id=user_id,
            run_id=run_id,
            name=name,
            kind=kind,
            media_type=media_type,
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            content=content,
            created_at=utcnow(),
        )
        s.add(row)
        await s.commit()
        return row


async def load_artifact(db: Database, artifact_id: str) -> TaskArtifact | None:
    async with db.session() as s:
        return await s.get(TaskArtifact, artifact_id)


async def load_task_artifact(db: Database, task_id: str, artifact_id: str, user_id: str) -> TaskArtifact:
    """The artifact of the user's task; 404 ``artifact_not_found`` for another user's, another
    task's, a missing one or a workspace checkpoint (internal, never served)."""
    return await load_owned(
        db, TaskArtifact, artifact_id,
        lambda a: a.task_id == task_id and a.user_id == user_id and a.kind != CHECKPOINT_KIND,
        ServiceError(404, "artifact_not_found", f"no artifact {artifact_id!r} on task {task_id!r}"),
    )


def download_name(row: TaskArtifact) -> str:
    """The artifact's name made safe for a ``Content-Disposition`` filename."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in row.name)[:200] or "artifact"
