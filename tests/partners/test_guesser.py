"""The guesser's pure parts: the demo's keyword rules, the description check, the settling of a
model's answer against what the service offers, and the estimate's percentiles and keywords."""

from __future__ import annotations

import pytest

from codetether.agent.catalog import ModelCatalog
from codetether.core.config import Settings
from codetether.core.errors import ServiceError
from codetether.partners.contracts import GuessAnswer
from codetether.partners.estimates import keywords, percentile
from codetether.partners.guesser import (
    DESCRIPTION_MAX,
    check_description,
    derive_title,
    guess_input,
    guess_schema,
    rules_guess,
    settle,
)


@pytest.fixture
def catalog(monkeypatch) -> ModelCatalog:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    for name in ("ANTHROPIC_API_KEY", "GEMINI_API_KEY", "XAI_API_KEY", "MINIMAX_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return ModelCatalog.from_settings(Settings(default_model="demo"))


@pytest.mark.parametrize("description,agent_type", [
    ("Build a CSV export of last month's invoices", "build"),
    ("Write and fix the signup script", "build"),
    ("Plan the migration roadmap for next quarter", "plan"),
    ("Research and compare three CRM tools", "explore"),
    ("Summarise this week's support tickets", "general"),
])
def test_rules_choose_the_agent_type_by_keywords(catalog, description, agent_type):
    inp = guess_input(description, catalog, None)
    answer = rules_guess(inp)
    assert answer.agent_type == agent_type and answer.model == "demo" and answer.source == "rules"
    assert answer.prompt == description and answer.title == description
    assert answer == rules_guess(inp)  # deterministic
    assert (answer.confidence == 0.4) == (agent_type == "general")


def test_titles_are_the_first_sentence_cut_at_a_word():
    assert derive_title("fix the login page. It loops forever.") == "Fix the login page"
    long = derive_title("word " * 40)
    assert len(long) <= 80 and long.endswith("…") and "  " not in long


def test_description_check():
    assert check_description("  hi  ") == "hi"
    for bad in ("", " \n\t", "x" * (DESCRIPTION_MAX + 1)):
        with pytest.raises(ServiceError) as err:
            check_description(bad)
        assert (err.value.status, err.value.code, err.value.field) == (422, "invalid_description", "description")
    assert len(check_description("x" * DESCRIPTION_MAX)) == DESCRIPTION_MAX


def test_the_schema_offers_only_available_models(catalog):
    schema = guess_schema(guess_input("x", catalog, "gpt-4o"))
    assert schema["properties"]["agent_type"]["enum"] == ["build", "plan", "general", "explore"]
    models = schema["properties"]["model"]["enum"]
    assert "demo" in models and "gpt-4o" in models and "claude-sonnet-4" not in models


def test_settle_keeps_what_is_offered(catalog):
    s = settle(GuessAnswer("Churn plan", "plan", "Write a churn plan.", "gpt-4", 0.8), "churn", catalog)
    # An alias becomes the model's own name.
    assert (s.title, s.agent_type, s.prompt, s.model, s.confidence) == ("Churn plan", "plan", "Write a churn plan.", "gpt-4.1", 0.8)
    assert s.create_payload() == {"title": "Churn plan", "description": "Write a churn plan.", "agent_type": "plan",
                                  "model": "gpt-4.1"}


@pytest.mark.parametrize("agent_type,model,want_type,want_model", [
    ("coder", "gpt-4o", "build", "gpt-4o"),  # the keyword rules' agent type
    ("plan", "gpt-9", "plan", "demo"),  # the default model
    ("plan", "claude-opus", "plan", "demo"),  # known, but without credentials here
    ("", "", "build", "demo"),
])
def test_settle_replaces_unknown_choices_and_lowers_confidence(catalog, agent_type, model, want_type, want_model):
    s = settle(GuessAnswer("", agent_type, "", model, 0.99), "Build the export script", catalog)
    assert (s.agent_type, s.model) == (want_type, want_model)
    assert s.confidence <= 0.3
    assert s.title == "Build the export script" and s.prompt == "Build the export script"


@pytest.mark.parametrize("raw,expected", [(1.7, 1.0), (-2, 0.0), (float("nan"), 0.5), (True, 0.5)])
def test_settle_clamps_confidence(catalog, raw, expected):
    assert settle(GuessAnswer("t", "general", "p", "demo", raw), "d", catalog).confidence == expected


def test_percentiles_are_nearest_rank():
    assert percentile([], 0.5) is None
    assert percentile([3.0], 0.9) == 3.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.0
    assert percentile([float(i) for i in range(1, 11)], 0.9) == 9.0


def test_keywords_leave_out_short_and_common_words():
    assert keywords("Please build the CSV export for our invoices, ok?") == {"build", "csv", "export", "invoices"}
