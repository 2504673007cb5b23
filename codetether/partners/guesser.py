"""The guesser (CONTRACT §14, ``POST /v1/partner/guess``): a person's words in, a task to run out.

The route (``codetether/api/rest/routes/partners.py``) checks the description
(:func:`check_description`) and runs the guess workflow, whose activity
(``codetether/partners/activities.py``) asks the guessing model for an object matching
:data:`GUESS_SCHEMA` (the ``demo`` model answers with :func:`rules_guess` instead: keyword rules,
deterministic). The route then settles the answer against what this service offers
(:func:`settle`): an agent type or model it does not offer is replaced and the confidence
lowered, so ``create_payload`` is always a body ``POST /v1/automation/tasks`` accepts.
The estimate comes from :mod:`codetether.partners.estimates`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from codetether.agent.catalog import DEMO_MODEL, ModelCatalog
from codetether.agent.contracts import ChatMessage
from codetether.agent.prompts import AGENT_TYPES, DEFAULT_AGENT_TYPE
from codetether.core.errors import ServiceError
from codetether.partners.contracts import GuessAnswer, GuessInput, GuessOption
from codetether.tasks.service import DESCRIPTION_LIMIT, TITLE_LIMIT

DESCRIPTION_MAX = 4000
TITLE_MAX = 80
# The confidence of an answer that named something this service does not offer is at most this.
UNKNOWN_CHOICE_CONFIDENCE = 0.3

AGENT_TYPE_PURPOSES = {
    "general": "answers, summaries, writing and anything that is neither of the others",
    "build": "produces concrete output: code, documents, data, fixes",
    "plan": "writes a step-by-step plan with risks and open questions, without carrying it out",
    "explore": "investigates, compares options and reports findings with evidence",
}

# The demo's keyword rules: the agent type whose words the description uses most (ties go to the
# earlier type); none of them: general.
KEYWORDS: dict[str, frozenset[str]] = {
    "build": frozenset({"build", "create", "write", "implement", "add", "fix", "generate", "make", "code",
                        "refactor", "convert", "draft", "export", "script", "migrate", "translate"}),
    "plan": frozenset({"plan", "design", "roadmap", "strategy", "outline", "steps", "schedule",
                       "architecture", "proposal", "prioritize", "prioritise"}),
    "explore": frozenset({"research", "investigate", "compare", "explore", "find", "analyze", "analyse",
                          "review", "evaluate", "audit", "why", "understand"}),
}
_WORD = re.compile(r"[a-z0-9]+")

GUESS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": TITLE_MAX,
                  "description": "A short title for the task, at most 80 characters."},
        "agent_type": {"type": "string", "description": "The agent type that fits the work best."},
        "prompt": {"type": "string", "minLength": 1,
                   "description": "Clear, complete instructions for the agent, written from the person's words."},
        "model": {"type": "string", "description": "The model that should run the task."},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1,
                       "description": "How sure you are that this is the task the person means (0 to 1)."},
    },
    "required": ["title", "agent_type", "prompt", "model", "confidence"],
    "additionalProperties": False,
}


def check_description(description: str) -> str:
    """The description without surrounding blanks; 422 ``invalid_description`` when it is empty
    or longer than :data:`DESCRIPTION_MAX` characters."""
    text = description.strip()
    if not text:
        raise ServiceError(422, "invalid_description", "describe the task in a few words", field="description")
    if len(text) > DESCRIPTION_MAX:
        raise ServiceError(422, "invalid_description",
                           f"the description is {len(text)} characters; at most {DESCRIPTION_MAX}", field="description")
    return text


def guess_input(description: str, catalog: ModelCatalog, guess_model: str | None) -> GuessInput:
    """The workflow's input: the description, the guessing model and the choices it may name."""
    models = [GuessOption(m.name, m.description) for m in catalog.public_list() if m.available]
    return GuessInput(
        description=description,
        model=guess_model or catalog.default_model,
        agent_types=[GuessOption(t, AGENT_TYPE_PURPOSES.get(t, "")) for t in AGENT_TYPES],
        models=models,
        default_model=catalog.default_model,
    )


def guess_schema(inp: GuessInput) -> dict[str, Any]:
    """:data:`GUESS_SCHEMA` with the agent types and models this service offers as enums."""
    props = dict(GUESS_SCHEMA["properties"])
    props["agent_type"] = {**props["agent_type"], "enum": [o.name for o in inp.agent_types]}
    if inp.models:
        props["model"] = {**props["model"], "enum": [o.name for o in inp.models]}
    return {**GUESS_SCHEMA, "properties": props}


def guess_messages(inp: GuessInput) -> list[ChatMessage]:
    """The guessing model's conversation: what to do and the choices, then the person's words."""
    types = "\n".join(f"- {o.name}: {o.description}" for o in inp.agent_types)
    models = "\n".join(f"- {o.name}{': ' + o.description if o.description else ''}" for o in inp.models)
    system = (
        "You turn a person's short description of some work into a task for an AI agent. Call the "
        "submit_result tool once with: a short title; the agent type that fits; a prompt that gives the "
        "agent clear, complete instructions in the person's language (keep every detail they gave, invent "
        "none); the model to run it; and your confidence from 0 to 1 that this is what they mean.\n\n"
        f"Agent types:\n{types}\n\nModels (when unsure, choose {inp.default_model}):\n{models}"
    )
    return [ChatMessage(role="system", content=system), ChatMessage(role="user", content=inp.description)]


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def derive_title(description: str, limit: int = TITLE_MAX) -> str:
    """The description's first sentence or line, cut at a word boundary to ``limit`` characters."""
    first = re.split(r"(?<=[.!?])\s|\n", description.strip(), maxsplit=1)[0].strip().rstrip(".")
    first = " ".join(first.split()) or "Task"
    if len(first) > limit:
        cut = first[: limit - 1].rsplit(" ", 1)[0] or first[: limit - 1]
        first = cut.rstrip(",;:") + "…"
    return first[0].upper() + first[1:]


def rules_guess(inp: GuessInput) -> GuessAnswer:
    """The demo model's answer: keyword rules, deterministic for a description."""
    seen = words(inp.description)
    scores = {t: sum(1 for w in seen if w in kws) for t, kws in KEYWORDS.items()}
    best = max(scores, key=lambda t: scores[t])  # the first of equal scores: dicts keep order
    if scores[best] == 0:
        agent_type, confidence = DEFAULT_AGENT_TYPE, 0.4
    else:
        runner_up = max((s for t, s in scores.items() if t != best), default=0)
        agent_type, confidence = best, min(0.9, 0.55 + 0.1 * (scores[best] - runner_up))
    return GuessAnswer(title=derive_title(inp.description), agent_type=agent_type, prompt=inp.description,
                       model=inp.default_model, confidence=round(confidence, 2), source="rules")


@dataclass(frozen=True)
class Suggestion:
    title: str
    agent_type: str
    prompt: str
    model: str
    confidence: float

    def create_payload(self) -> dict[str, Any]:
        """The body of ``POST /v1/automation/tasks`` that runs this suggestion."""
        return {"title": self.title, "description": self.prompt, "agent_type": self.agent_type, "model": self.model}


def settle(answer: GuessAnswer, description: str, catalog: ModelCatalog) -> Suggestion:
    """The answer made safe to run here: an agent type or model this service does not offer is
    replaced (the keyword rules' agent type; the default model) and the confidence lowered to at
    most :data:`UNKNOWN_CHOICE_CONFIDENCE`; an empty title or prompt comes from the description."""
    confidence = _confidence(answer.confidence)
    agent_type = answer.agent_type.strip().lower() if isinstance(answer.agent_type, str) else ""
    if agent_type not in AGENT_TYPES:
        fallback = GuessInput(description=description, model="", default_model=catalog.default_model)
        agent_type = rules_guess(fallback).agent_type
        confidence = min(confidence, UNKNOWN_CHOICE_CONFIDENCE)
    spec = catalog.resolve(answer.model.strip()) if isinstance(answer.model, str) and answer.model.strip() else None
    if spec is None or not spec.available:
        spec = catalog.resolve(None)
        confidence = min(confidence, UNKNOWN_CHOICE_CONFIDENCE)
    model = spec.name if spec is not None and spec.available else DEMO_MODEL
    title = " ".join(str(answer.title or "").split())[:TITLE_LIMIT] or derive_title(description)
    prompt = str(answer.prompt or "").strip()[:DESCRIPTION_LIMIT] or description
    return Suggestion(title=title, agent_type=agent_type, prompt=prompt, model=model, confidence=round(confidence, 2))


def _confidence(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return 0.5
    return max(0.0, min(1.0, float(value)))
