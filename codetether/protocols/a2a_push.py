"""A2A push-notification configs of a task (``tasks/pushNotificationConfig/*`` over A2A).

A config names a URL that receives the task's status updates. Deliveries go through the same
durable machinery as webhooks (``codetether/webhooks/routing.py`` fans them out, ``DeliveryWorkflow`` retries
them, signed with the task's webhook secret or the server's), so the URL passes the same checks
as a webhook URL.
"""

from __future__ import annotations

from sqlalchemy import delete, select

from codetether.core.config import Settings
from codetether.core.db import Database, load_owned
from codetether.core.errors import ServiceError
from codetether.core.ids import new_id
from codetether.core.models import A2APushConfig
from codetether.core.netguard import UnsafeURL, validate_webhook_url

MAX_CONFIGS_PER_TASK = 10


async def create_push_config(
    db: Database,
    settings: Settings,
    *,
    task_id: str,
    user_id: str,
    url: str,
    token: str | None = None,
    auth_scheme: str | None = None,
    auth_credentials: str | None = None,
    config_id: str | None = None,
) -> A2APushConfig:
    """Adds (or, with an existing ``config_id``, replaces) a config; the task must be the caller's."""
    if not url or len(url) > 2000:
        raise ServiceError(422, "invalid_push_url", "the push notification URL is missing or too long")
    try:
        await validate_webhook_url(url, allow_private=settings.webhook_allow_private)
    except UnsafeURL as err:
        raise ServiceError(422, "invalid_push_url", str(err)) from None
    async with db.write_session() as s:
        existing = list((await s.execute(select(A2APushConfig).where(A2APushConfig.task_id == task_id))).scalars())
        row = next((c for c in existing if config_id and c.id == config_id), None)
        if row is None:
            if len(existing) >= MAX_CONFIGS_PER_TASK:
                raise ServiceError(422, "too_many_push_configs", f"a task has at most {MAX_CONFIGS_PER_TASK} push configs")
            row = A2APushConfig(id=config_id or new_id("push"), task_id=task_id, user_id=user_id)
            s.add(row)
        row.url = url
        row.token = token or None
        row.auth_scheme = auth_scheme or None
        row.auth_credentials = auth_credentials or None
        await s.commit()
        await s.refresh(row)
    return row


async def list_push_configs(db: Database, task_id: str) -> list[A2APushConfig]:
    async with db.session() as s:
        rows = await s.execute(
            select(A2APushConfig).where(A2APushConfig.task_id == task_id).order_by(A2APushConfig.created_at)
        )
        return list(rows.scalars())


async def get_push_config(db: Database, task_id: str, config_id: str) -> A2APushConfig:
    return await load_owned(
        db, A2APushConfig, config_id, lambda c: c.task_id == task_id,
        ServiceError(404, "push_config_not_found", f"no push notification config {config_id!r}"),
    )


async def delete_push_config(db: Database, task_id: str, config_id: str) -> None:
    async with db.write_session() as s:
        await s.execute(delete(A2APushConfig).where(A2APushConfig.id == config_id, A2APushConfig.task_id == task_id))
        await s.commit()
