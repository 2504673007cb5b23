"""Agent backends behind one interface (:class:`activities.backends.base.AgentBackend`)."""

from activities.backends.base import AgentBackend, Completion, ProviderError, TurnOutcome
from activities.backends.factory import backend_for

__all__ = ["AgentBackend", "Completion", "ProviderError", "TurnOutcome", "backend_for"]
