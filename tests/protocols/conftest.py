"""The live stack for the agent-protocol tests: worker, API served by uvicorn on 127.0.0.1 (with
its lifespan, which runs the MCP session manager), so the SDKs' own clients talk real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest_asyncio

from tests.conftest import Stack, running_stack
from tests.support.live_api import LiveServer

WEBHOOK_SECRET = "whsec_cHJvdG9jb2xzLXRlc3Qtc2lnbmluZy1rZXk="


@dataclass
class Live:
    stack: Stack
    url: str


@pytest_asyncio.fixture
async def live(settings, temporal_env, db) -> AsyncIterator[Live]:
    settings = settings.model_copy(update={"webhook_secret": WEBHOOK_SECRET, "webhook_retry_schedule": "1,1,1"})
    async with running_stack(settings, temporal_env.client, db) as s:
        async with LiveServer(s.app, lifespan="on") as server:
            yield Live(s, server.url)
