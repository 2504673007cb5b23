"""Dataclasses of the guesser's workflow (``POST /v1/partner/guess``): its type name, input and
answer. Pure data, safe in the workflow sandbox."""

from __future__ import annotations

from dataclasses import dataclass, field

# The guess workflow's type (as recorded in histories: never rename) and its id for one suggestion.
GUESS_WORKFLOW = "GuessWorkflow"


def guess_workflow_id(suggestion_id: str) -> str:
    return f"guess-{suggestion_id}"


@dataclass
class GuessOption:
    """A choice the model may name (an agent type or a model), with what it is for."""

    name: str
    description: str = ""


@dataclass
class GuessInput:
    description: str
    # The model that guesses (a public name of the catalog).
    model: str
    agent_types: list[GuessOption] = field(default_factory=list)
    models: list[GuessOption] = field(default_factory=list)
    # The model a suggestion names when nothing says otherwise (the service's default).
    default_model: str = ""


@dataclass
class GuessAnswer:
    """What the guessing model said, unchecked: the API validates it against what it offers."""

    title: str
    agent_type: str
    prompt: str
    model: str
    confidence: float
    # "model" when a model answered through the schema, "rules" for the keyword rules.
    source: str = "model"
