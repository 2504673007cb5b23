"""Process-wide state of the API: settings, database, Temporal client (connected lazily, so the
API serves reads while Temporal is down), model catalog and authenticator."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.client import Client

from codetether.tasks.eventstream import TaskSeqWatcher
from codetether.api.auth import Authenticator
from codetether.api.edge.errors import Problem
from codetether.agent.catalog import ModelCatalog
from codetether.core.config import Settings
from codetether.core.db import Database
from codetether.core.temporal import connect, register_search_attributes_if_allowed
from codetether.files.wiring import storage_from_settings

log = logging.getLogger("codetether.api")


class AppState:
    def __init__(self, settings: Settings, db: Database, client: Client | None = None) -> None:
        self.settings = settings
        self.db = db
        self.catalog = ModelCatalog.from_settings(settings)
        self.authenticator = Authenticator(db)
        # Uploaded files' bytes (the data dir, or S3-compatible storage when configured).
        self.storage = storage_from_settings(settings)
        self._client = client
        self._lock = asyncio.Lock()
        # Hooks other layers install (rate limiting after authentication, for instance).
        self.on_authenticated: Callable[[Any, Any], Awaitable[None]] | None = None
        self.extras: dict[str, Any] = {}
        # Async context managers entered for the app's lifetime (codetether.api.app's lifespan).
        self.lifespan_hooks: list[Callable[[], Any]] = []
        # Set once the namespace is known to have CodeTether's search attributes (they are never
        # removed by the service), so readiness stops asking.
        self.search_attributes_ready = False

    @property
    def task_watcher(self) -> TaskSeqWatcher:
        """The process's one follower of task event logs (SSE, the console's stream, A2A)."""
        watcher = self.extras.get("task_seq_watcher")
        if watcher is None:
            watcher = self.extras["task_seq_watcher"] = TaskSeqWatcher(self.db)
        return watcher

    async def close(self) -> None:
        watcher = self.extras.pop("task_seq_watcher", None)
        if watcher is not None:
            await watcher.close()

    async def temporal(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    client = await asyncio.wait_for(connect(self.settings), timeout=5)
                except Exception as err:  # noqa: BLE001
                    raise Problem(503, "temporal_unavailable", f"cannot reach Temporal: {err}") from None
                # A fresh namespace would refuse every create until its search attributes exist.
                try:
                    self.search_attributes_ready = await asyncio.wait_for(
                        register_search_attributes_if_allowed(client, log), timeout=5
                    )
                except Exception:  # noqa: BLE001 - readiness reports it; reads still work
                    log.warning("could not check Temporal search attributes", exc_info=True)
                self._client = client
        return self._client

    async def temporal_or_none(self) -> Client | None:
        """The client, or None when Temporal cannot be reached: for work that may wait for a
        later chance (an alert the next settled turn publishes anyway)."""
        try:
            return await self.temporal()
        except Problem:
            return None

    @property
    def temporal_connected(self) -> bool:
        return self._client is not None
