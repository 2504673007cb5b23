"""Moving what an end user's own account holds into the account it is claimed into.

Used when a person claims an end user by signing in to an account they already have
(``codetether/partners/claims.py``): the end user's tasks, with their events, artifacts and
input files, its codebases, task deliveries and A2A push configs, and the tokens the partner was
issued for it change owner in the claim's transaction. The agent's transcript and a task's
conversation hang off the task, so they follow it.

Budget charges stay where they were made: they record who was charged at the time (the
partner's sponsorship or the end user's own budget), and moving them would bill the person's
month for spending they did not approve. The emptied backing account stays too (no address,
no password, nobody can sign in to it), since the charges refer to it.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from codetether.core.models import (
    A2APushConfig,
    Codebase,
    OAuthToken,
    StoredFile,
    Task,
    TaskArtifact,
    TaskEvent,
    WebhookDelivery,
    WebhookSubscription,
)

# Every table whose rows belong to an account through ``user_id`` and follow the tasks.
MOVED = (Task, TaskEvent, TaskArtifact, StoredFile, Codebase, WebhookSubscription, WebhookDelivery,
         A2APushConfig, OAuthToken)


async def move_account_data(s: AsyncSession, from_user_id: str, to_user_id: str) -> dict[str, int]:
    """Re-owns every row of :data:`MOVED` from one account to the other (in the caller's
    transaction); returns how many rows of each table moved."""
    moved: dict[str, int] = {}
    for model in MOVED:
        res = await s.execute(update(model).where(model.user_id == from_user_id).values(user_id=to_user_id))
        moved[model.__tablename__] = res.rowcount or 0
    return moved
