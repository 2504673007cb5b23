"""A2A push-notification configs of a task (``tasks/pushNotificationConfig/*`` over A2A).

A config names a URL that receives the task's status updates. Deliveries go through the same
durable machinery as webhooks (``codetether/webhooks/routing.py`` fans them out, ``DeliveryWorkflow`` retries
them, signed with the task's webhook secret or the server's), so the URL passes the same checks
as a webhook URL.

A config id names the config within its task (the key is ``(task_id, id)``): another task, the
caller's or anyone's, may use the same id, and setting a config with an id the task already has
replaces that config.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from codetether.core.config import Settings
from codetether.core.db import Database
from codetether.core.errors import ServiceError
from codetether.core.ids import new_id
from codetether.core.models import A2APushConfig
from codetether.core.netguard import UnsafeURL, validate_webhook_url

MAX_CONFIGS_PER_TASK = 10
CONFIG_ID = re.compile(r"[A-Za-z0-9_.:~-]{1,40}")
URL_LIMIT, TOKEN_LIMIT, SCHEME_LIMIT, CREDENTIALS_LIMIT = 2000, 500, 40, 2000


@dataclass(frozen=True)
class PushConfigInput:
    url: str
    token: str | None = None
    auth_scheme: str | None = None
    auth_credentials: str | None = None
    config_id: str | None = None


async def check_push_config(settings: Settings, cfg: PushConfigInput) -> None:
    """Everything about a config that can be refused before anything is written (422s)."""
    if not cfg.url or len(cfg.url) > URL_LIMIT:
        raise ServiceError(422, "invalid_push_url", "the push notification URL is missing or too long")
    if cfg.config_id is not None and not CONFIG_ID.fullmatch(cfg.config_id):
        raise ServiceError(422, "invalid_push_config_id",
                           "a push notification config id is 1 to 40 characters of A-Z a-z 0-9 _ . : ~ -")
    for value, limit, name in ((cfg.token, TOKEN_LIMIT, "token"), (cfg.auth_scheme, SCHEME_LIMIT, "authentication scheme"),
                               (cfg.auth_credentials, CREDENTIALS_LIMIT, "authentication credentials")):
        if value is not None and len(value) > limit:
            raise ServiceError(422, "validation_error", f"the push notification {name} is longer than {limit} characters")
    try:
        await validate_webhook_url(cfg.url, allow_private=settings.webhook_allow_private)
    except UnsafeURL as err:
        raise ServiceError(422, "invalid_push_url", str(err)) from None


async def check_room(db: Database, task_id: str, config_id: str | None) -> None:
    """Refuses a new config for a task that has as many as it may have (a replacement is fine)."""
    async with db.session() as s:
        if config_id is not None and await s.get(A2APushConfig, (task_id, config_id)) is not None:
            return
        count = (await s.execute(
            select(func.count()).select_from(A2APushConfig).where(A2APushConfig.task_id == task_id)
        )).scalar_one()
    if count >= MAX_CONFIGS_PER_TASK:
        raise ServiceError(422, "too_many_push_configs", f"a task has at most {MAX_CONFIGS_PER_TASK} push configs")


async def create_push_config(
    db: Database, settings: Settings, *, task_id: str, user_id: str, cfg: PushConfigInput, checked: bool = False
) -> A2APushConfig:
    """Adds (or, with an id the task already has, replaces) a config; the task must be the caller's.
    ``checked``: :func:`check_push_config` has already passed."""
    if not checked:
        await check_push_config(settings, cfg)
    for attempt in range(2):
        try:
            return await _upsert(db, task_id, user_id, cfg)
        except IntegrityError:
            # Another request added the same id first: replace that one.
            if attempt or not cfg.config_id:
                raise
    raise AssertionError("unreachable")


async def _upsert(db: Database, task_id: str, user_id: str, cfg: PushConfigInput) -> A2APushConfig:
    async with db.write_session() as s:
        row = await s.get(A2APushConfig, (task_id, cfg.config_id)) if cfg.config_id else None
        if row is None:
            count = (await s.execute(
                select(func.count()).select_from(A2APushConfig).where(A2APushConfig.task_id == task_id)
            )).scalar_one()
            if count >= MAX_CONFIGS_PER_TASK:
                raise ServiceError(422, "too_many_push_configs", f"a task has at most {MAX_CONFIGS_PER_TASK} push configs")
            row = A2APushConfig(id=cfg.config_id or new_id("push"), task_id=task_id, user_id=user_id)
            s.add(row)
        row.url = cfg.url
        row.token = cfg.token or None
        row.auth_scheme = cfg.auth_scheme or None
        row.auth_credentials = cfg.auth_credentials or None
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
    async with db.session() as s:
        row = await s.get(A2APushConfig, (task_id, config_id))
    if row is None:
        raise ServiceError(404, "push_config_not_found", f"no push notification config {config_id!r}")
    return row


async def delete_push_config(db: Database, task_id: str, config_id: str) -> None:
    async with db.write_session() as s:
        await s.execute(delete(A2APushConfig).where(A2APushConfig.id == config_id, A2APushConfig.task_id == task_id))
        await s.commit()
