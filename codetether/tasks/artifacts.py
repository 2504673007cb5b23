"""Task artifacts in the database: storing (idempotent on the id, so a retried activity does not
duplicate one) and their public description. Served by ``codetether/api/rest/routes/artifacts.py``."""

from __future__ import annotations

import hashlib

from codetether.core.db import Database
from codetether.core.ids import utcnow
from codetether.core.models import TaskArtifact

CHECKPOINT_KIND = "checkpoint"
PUBLIC_KINDS = ("patch", "plan", "findings", "output", "file")


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
