"""The guesser's model call (``POST /v1/partner/guess``), run by the guess workflow.

One activity: the guessing model is offered ``submit_result`` with the guess schema as its
parameters (the structured-output path of ``codetether/agent/structured.py``, which every
provider supports) and its object is the answer. The ``demo`` model is not a language model: it
answers with the guesser's keyword rules. An answer that does not come as an object falls back to
those rules with a low confidence; the API checks every answer against what it offers
(:func:`codetether.partners.guesser.settle`). Built by ``codetether/worker.py``.
"""

from __future__ import annotations

from typing import Any

import httpx
from temporalio import activity

from codetether.agent.backends.base import AgentBackend, ProviderError
from codetether.agent.catalog import ModelCatalog
from codetether.agent.structured import SUBMIT_RESULT, json_answer, submit_result_tool
from codetether.core.config import Settings
from codetether.partners.contracts import GuessAnswer, GuessInput
from codetether.partners.guesser import (
    UNKNOWN_CHOICE_CONFIDENCE,
    guess_messages,
    guess_schema,
    rules_guess,
)
from codetether.tasks.activities import (
    available_model,
    cached_backend,
    provider_failure,
)


class GuessActivities:
    def __init__(self, *, settings: Settings, catalog: ModelCatalog, http_client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.catalog = catalog
        self.http_client = http_client
        self._backends: dict[str, AgentBackend] = {}

    @activity.defn
    async def guess_task(self, inp: GuessInput) -> GuessAnswer:
        attempt = activity.info().attempt
        spec = available_model(self.catalog, inp.model, attempt)
        if spec.kind == "demo":
            return rules_guess(inp)
        backend = cached_backend(self._backends, spec.kind, self.http_client)
        try:
            done = await backend.complete(spec, guess_messages(inp), [submit_result_tool(guess_schema(inp))], _quiet)
        except ProviderError as err:
            raise provider_failure(err, attempt) from None
        answer = next((c.arguments for c in done.tool_calls if c.name == SUBMIT_RESULT), None)
        if not isinstance(answer, dict):
            answer = json_answer(done.text)
        if not isinstance(answer, dict):
            fallback = rules_guess(inp)
            fallback.confidence = min(fallback.confidence, UNKNOWN_CHOICE_CONFIDENCE)
            return fallback
        return _answer(answer)


def _answer(obj: dict[str, Any]) -> GuessAnswer:
    def text(key: str) -> str:
        value = obj.get(key)
        return value if isinstance(value, str) else ""

    confidence = obj.get("confidence")
    return GuessAnswer(title=text("title"), agent_type=text("agent_type"), prompt=text("prompt"), model=text("model"),
                       confidence=float(confidence) if isinstance(confidence, (int, float)) else 0.5)


async def _quiet(_message: str, _percent: int | None) -> None:
    """Progress of a guess is not reported anywhere: the caller waits for the whole answer."""
