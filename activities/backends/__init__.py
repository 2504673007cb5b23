"""Agent backends behind one interface (:class:`activities.backends.base.AgentBackend`)."""

from activities.backends.base import AgentBackend, ProviderError, TurnOutcome, backend_for

__all__ = ["AgentBackend", "ProviderError", "TurnOutcome", "backend_for"]
