"""Agent backends behind one interface (:class:`codetether.agent.backends.base.AgentBackend`)."""

from codetether.agent.backends.base import AgentBackend, Completion, ProviderError, TurnOutcome
from codetether.agent.backends.factory import backend_for

__all__ = ["AgentBackend", "Completion", "ProviderError", "TurnOutcome", "backend_for"]
