"""Picks the backend for a model's kind (``demo``, ``openai``, ``anthropic``)."""

from __future__ import annotations

from codetether.agent.backends.base import AgentBackend, ProviderError


def backend_for(kind: str, **deps) -> AgentBackend:
    if kind == "demo":
        from codetether.agent.backends.demo import DemoBackend

        return DemoBackend(**deps)
    if kind == "anthropic":
        from codetether.agent.backends.anthropic import AnthropicBackend

        return AnthropicBackend(**deps)
    if kind == "openai":
        from codetether.agent.backends.openai import OpenAIBackend

        return OpenAIBackend(**deps)
    raise ProviderError(f"unknown backend kind {kind!r}", retryable=False)


def preload() -> None:
    """Imports every backend's SDK now (at worker start) rather than inside a first activity,
    where a slow import would block the event loop and miss heartbeats."""
    import codetether.agent.backends.anthropic  # noqa: F401
    import codetether.agent.backends.demo  # noqa: F401
    import codetether.agent.backends.openai  # noqa: F401
