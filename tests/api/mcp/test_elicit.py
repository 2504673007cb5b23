"""What an MCP host is asked for each kind of ``required_action`` and what its answer becomes
(``codetether/api/mcp/elicit.py``); the live round trip is in tests/protocols/test_mcp_elicitation.py."""

from __future__ import annotations

import mcp_types as types
import pytest
from mcp_types._v2025_11_25 import PrimitiveSchemaDefinition
from pydantic import TypeAdapter

from codetether.api.mcp.elicit import Answer, answer_of, can_elicit, elicitation_of
from codetether.tasks.answers import refusal

PRIMITIVE = TypeAdapter(PrimitiveSchemaDefinition)
QUESTION = {"id": "ra_1", "kind": "question", "prompt": "Which color?", "options": ["red", "green"]}
APPROVAL = {"id": "ra_2", "kind": "approval", "prompt": "Approve the plan?",
            "artifact": {"id": "art_1", "name": "plan.md", "kind": "plan", "content": "1. Paint it\n"}}
BUDGET = {"id": "ra_3", "kind": "budget", "prompt": "The next turn needs $0.10 more."}


@pytest.mark.parametrize("action", [QUESTION, {**QUESTION, "options": None}, APPROVAL, BUDGET])
def test_every_schema_is_one_the_spec_allows(action):
    _message, schema = elicitation_of(action)
    assert schema["type"] == "object" and set(schema["required"]) <= set(schema["properties"])
    for prop in schema["properties"].values():
        PRIMITIVE.validate_python(prop)


def test_an_approval_shows_the_plan_and_asks_for_a_decision():
    message, schema = elicitation_of(APPROVAL)
    assert message == "Approve the plan?\n\n--- plan.md ---\n1. Paint it\n---"
    assert schema["properties"]["decision"]["enum"] == ["approve", "reject"] and schema["required"] == ["decision"]
    assert "add_usd" not in schema["properties"]
    assert answer_of(APPROVAL, {"decision": "reject", "message": "Smaller steps"}) == Answer(
        message="Smaller steps", decision="reject")


def test_a_budget_adds_usd_only_with_an_approval():
    message, schema = elicitation_of(BUDGET)
    assert message == BUDGET["prompt"] and schema["properties"]["add_usd"]["type"] == "number"
    approved = answer_of(BUDGET, {"decision": "approve", "add_usd": 2.5})
    assert approved == Answer(decision="approve", answer={"add_usd": 2.5})
    assert answer_of(BUDGET, {"decision": "reject", "add_usd": 2.5}) == Answer(decision="reject")


def test_answers_go_through_the_answer_rules():
    assert answer_of(QUESTION, {"answer": "green"}) == Answer(choice="green")
    wrong = answer_of(QUESTION, {"answer": "blue"})
    assert refusal(QUESTION, **vars(wrong)).code == "invalid_choice"
    words = answer_of({**QUESTION, "options": None}, {"answer": 7})
    assert refusal({**QUESTION, "options": None}, **vars(words)).code == "empty_answer"
    undecided = answer_of(APPROVAL, {"decision": 1})
    assert refusal(APPROVAL, **vars(undecided)).code == "decision_required"


class _Ctx:
    def __init__(self, caps: types.ClientCapabilities | None) -> None:
        self.client_capabilities = caps


def test_only_form_capable_clients_are_asked():
    elicitation = types.ElicitationCapability
    assert can_elicit(_Ctx(types.ClientCapabilities(elicitation=elicitation())))
    assert can_elicit(_Ctx(types.ClientCapabilities(elicitation=elicitation(form=types.FormElicitationCapability()))))
    assert not can_elicit(_Ctx(types.ClientCapabilities(elicitation=elicitation(url=types.UrlElicitationCapability()))))
    assert not can_elicit(_Ctx(types.ClientCapabilities()))
    assert not can_elicit(_Ctx(None))
