"""Fixtures for tests that run real provider backends against the scripted servers.

``provider_stack`` is the ``stack`` fixture with the provider environment pointed at the scripted
OpenAI and Anthropic servers (the way an operator would: ``OPENAI_BASE_URL``/``OPENAI_API_KEY``,
``ANTHROPIC_BASE_URL``/``ANTHROPIC_API_KEY``) before the API and the worker read their model
catalog. Every other provider is left without credentials. Import the fixtures into a test module
to use them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from tests.conftest import Stack, running_stack
from tests.support.anthropic_server import AnthropicServer
from tests.support.openai_server import OpenAIServer

UNCONFIGURED_PROVIDER_VARS = (
    "GEMINI_API_KEY", "GEMINI_BASE_URL", "XAI_API_KEY", "XAI_BASE_URL", "MINIMAX_API_KEY", "MINIMAX_BASE_URL",
)


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


@pytest.fixture
def anthropic_server() -> Iterator[AnthropicServer]:
    with AnthropicServer() as srv:
        yield srv


@pytest.fixture
def provider_env(monkeypatch: pytest.MonkeyPatch, openai_server: OpenAIServer, anthropic_server: AnthropicServer) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-scripted-openai")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-scripted")
    for name in UNCONFIGURED_PROVIDER_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest_asyncio.fixture
async def provider_stack(settings, temporal_env, db, provider_env) -> AsyncIterator[Stack]:
    async with running_stack(settings, temporal_env.client, db) as s:
        yield s
