"""Codebases a user registers so tasks can name them: the logic behind ``codetether codebases``.

``GET /v1/automation/codebases`` lists them; ``codebase_id`` on ``POST /v1/automation/tasks`` must
name one of the caller's codebases.
"""

from __future__ import annotations

from sqlalchemy import select

from core.accounts import get_user_by_email
from core.db import Database
from core.ids import iso, new_id, utcnow
from core.models import Codebase


class CodebaseError(ValueError):
    pass


def codebase_to_dict(c: Codebase) -> dict:
    return {
        "codebase_id": c.id,
        "user_id": c.user_id,
        "name": c.name,
        "description": c.description,
        "repository_url": c.repository_url,
        "created_at": iso(c.created_at),
    }


async def create_codebase(
    db: Database, email: str, *, name: str, repository_url: str | None = None, description: str | None = None
) -> Codebase:
    name = name.strip()
    if not name or len(name) > 200:
        raise CodebaseError("the name must have 1 to 200 characters")
    if repository_url is not None and len(repository_url) > 2000:
        raise CodebaseError("the repository URL must have at most 2000 characters")
    user = await get_user_by_email(db, email)
    if user is None:
        raise CodebaseError(f"no user {email}")
    row = Codebase(
        id=new_id("cb"),
        user_id=user.id,
        name=name,
        description=description or None,
        repository_url=repository_url or None,
        created_at=utcnow(),
    )
    async with db.session() as s:
        s.add(row)
        await s.commit()
    return row


async def list_codebases(db: Database, email: str) -> list[Codebase]:
    user = await get_user_by_email(db, email)
    if user is None:
        raise CodebaseError(f"no user {email}")
    async with db.session() as s:
        rows = await s.execute(
            select(Codebase).where(Codebase.user_id == user.id).order_by(Codebase.created_at.desc(), Codebase.id.desc())
        )
        return list(rows.scalars())


async def codebases_of(db: Database, user_id: str) -> list[Codebase]:
    """The user's codebases, newest first (REST's ``GET /codebases`` and MCP's ``list_codebases``)."""
    async with db.session() as s:
        rows = await s.execute(select(Codebase).where(Codebase.user_id == user_id).order_by(Codebase.created_at.desc()))
        return list(rows.scalars())
