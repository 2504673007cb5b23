"""The guesser through the real stack (CONTRACT §14): ``POST /v1/partner/guess`` runs the guess
workflow on a worker, its ``create_payload`` creates a task as it is, the estimate comes from
completed tasks like it, the prefilled URL's token works once, and bad input is refused."""

from __future__ import annotations

import statistics
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_asyncio
from sqlalchemy import select

from codetether.core.ids import as_utc, parse_iso
from codetether.core.models import PartnerSuggestion
from codetether.partners.suggestions import take_suggestion
from tests.conftest import make_settings, running_stack, wait_status
from tests.partners.conftest import (
    client_credentials,
    exchange_form,
    issuer_of,
    sign_hs256,
    subject_claims,
)
from tests.support.openai_server import OpenAIServer

GUESS = "/v1/partner/guess"
TASKS = "/v1/automation/tasks"


def problem(r, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code, r.json()


def token_of(url: str) -> str:
    parts = urlsplit(url)
    assert parts.path == "/embed/v1/frame"
    return parse_qs(parts.query)["suggestion"][0]


async def test_guess_creates_a_runnable_task_and_estimates_from_history(stack, make_partner):
    http = stack.http
    acme = await make_partner()
    acme.token = await client_credentials(http, acme)
    # Words no other test uses, so the history is only this test's tasks.
    tag = uuid.uuid4().hex[:8]
    description = f"Build the zq{tag} ledger export from the yx{tag} invoices as a CSV file"

    r = await http.post(GUESS, json={"description": description}, headers=acme.headers)
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["suggestion_id"].startswith("sug_")
    assert first["agent_type"] == "build" and first["model"] == "demo"
    assert first["title"] == description and first["prompt"] == description
    assert 0 < first["confidence"] <= 1
    assert first["estimate"] == {"cost_usd_p50": None, "cost_usd_p90": None, "minutes_p50": None}
    assert first["create_payload"] == {"title": description, "description": description,
                                       "agent_type": "build", "model": "demo"}
    # Host "testserver" is not one the service names itself by: the listening address is used.
    assert first["prefilled_url"].startswith(f"{stack.settings.api_base_url}/embed/v1/frame?suggestion=sgt_")
    # The demo's rules are deterministic: the same words, the same suggestion.
    again = (await http.post(GUESS, json={"description": description}, headers=acme.headers)).json()
    assert {k: again[k] for k in ("title", "agent_type", "prompt", "model", "confidence", "create_payload")} == \
        {k: first[k] for k in ("title", "agent_type", "prompt", "model", "confidence", "create_payload")}
    assert again["suggestion_id"] != first["suggestion_id"]
    assert token_of(again["prefilled_url"]) != token_of(first["prefilled_url"])

    # create_payload is a body POST /v1/automation/tasks accepts as it is.
    finished = []
    for _ in range(3):
        created = await http.post(TASKS, json=first["create_payload"], headers=acme.headers)
        assert created.status_code == 201, created.text
        assert created.json()["agent_type"] == "build" and created.json()["model"] == "demo"
        finished.append(await wait_status(http, created.json()["task_id"], acme.headers, {"completed", "failed"}))
    assert [t["status"] for t in finished] == ["completed"] * 3, finished

    r = await http.post(GUESS, json={"description": description}, headers=acme.headers)
    assert r.status_code == 200, r.text
    est = r.json()["estimate"]
    minutes = [(parse_iso(t["completed_at"]) - parse_iso(t["created_at"])).total_seconds() / 60 for t in finished]
    assert est["minutes_p50"] == pytest.approx(statistics.median(minutes), abs=0.001)
    costs = sorted(t["usage"]["cost_usd"] for t in finished)
    assert est["cost_usd_p50"] == pytest.approx(costs[1]) and est["cost_usd_p90"] == pytest.approx(costs[2])

    # Other words (or another agent type) have no history yet.
    other = await http.post(GUESS, json={"description": f"Plan the wq{tag} offsite for the vb{tag} crew"},
                            headers=acme.headers)
    assert other.status_code == 200 and other.json()["agent_type"] == "plan"
    assert other.json()["estimate"] == {"cost_usd_p50": None, "cost_usd_p90": None, "minutes_p50": None}


async def test_prefilled_token_is_single_use_and_the_partners_own(stack, make_partner):
    http = stack.http
    acme, other = await make_partner(), await make_partner()
    acme.token = await client_credentials(http, acme)
    r = await http.post(GUESS, json={"description": "Compare three CRM tools for a small bakery"}, headers=acme.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["agent_type"] == "explore"
    token = token_of(body["prefilled_url"])
    row = await _suggestion(stack.db, body["suggestion_id"])
    assert row.partner_id == acme.partner_id and row.end_user_id is None and row.used_at is None
    assert row.token_hash != token and token not in str(row.create_payload)
    assert (parse_iso(body["expires_at"]) - as_utc(row.created_at)).total_seconds() == pytest.approx(3600, abs=1)

    assert await take_suggestion(stack.db, token, partner_id=other.partner_id) is None
    assert await take_suggestion(stack.db, token, partner_id=acme.partner_id) == body["create_payload"]
    assert await take_suggestion(stack.db, token, partner_id=acme.partner_id) is None


async def test_guess_for_an_end_user(stack, make_partner):
    http = stack.http
    acme = await make_partner()
    acme.token = await client_credentials(http, acme)
    eu = (await http.post("/v1/partner/end_users", json={"external_id": "guess-1"}, headers=acme.headers)).json()

    r = await http.post(GUESS, json={"description": "Summarise this week's support tickets"},
                        headers=acme.acting(eu["end_user_id"]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["agent_type"] == "general" and body["model"] == "demo"
    assert (await _suggestion(stack.db, body["suggestion_id"])).end_user_id == eu["end_user_id"]
    created = await http.post(TASKS, json=body["create_payload"], headers=acme.acting(eu["end_user_id"]))
    assert created.status_code == 201, created.text
    mine = await http.get(TASKS, headers=acme.acting(eu["end_user_id"]))
    assert created.json()["task_id"] in [t["task_id"] for t in mine.json()["data"]]

    # Another partner's end user does not exist for this partner.
    other = await make_partner()
    other.token = await client_credentials(http, other)
    problem(await http.post(GUESS, json={"description": "x"}, headers=other.acting(eu["end_user_id"])),
            404, "end_user_not_found")


async def test_guess_refuses_bad_input_and_other_callers(stack, make_partner, user):
    http = stack.http
    acme = await make_partner()
    acme.token = await client_credentials(http, acme)
    for description in ("", "   \n ", "x" * 4001):
        problem(await http.post(GUESS, json={"description": description}, headers=acme.headers),
                422, "invalid_description")
    problem(await http.post(GUESS, json={}, headers=acme.headers), 422, "validation_error")
    problem(await http.post(GUESS, json={"description": "ok", "model": "demo"}, headers=acme.headers),
            422, "validation_error")
    # Exactly at the limit is fine.
    assert (await http.post(GUESS, json={"description": "y" * 4000}, headers=acme.headers)).status_code == 200

    problem(await http.post(GUESS, json={"description": "Write a poem"}), 401, "unauthenticated")
    problem(await http.post(GUESS, json={"description": "Write a poem"}, headers=user.headers), 403, "insufficient_scope")
    # An end user's own exchanged token is not the partner.
    issuer = await issuer_of(http)
    exchanged = await http.post("/oauth/token", data=exchange_form(sign_hs256(acme, subject_claims(acme, issuer, "eu-self"))),
                                auth=acme.auth)
    assert exchanged.status_code == 200, exchanged.text
    problem(await http.post(GUESS, json={"description": "Write a poem"},
                            headers={"Authorization": f"Bearer {exchanged.json()['access_token']}"}),
            403, "insufficient_scope")


# ---- a real (scripted) model behind the structured-output path ------------------------------


@pytest.fixture
def openai_server(monkeypatch: pytest.MonkeyPatch):
    with OpenAIServer() as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-scripted")
        yield srv


@pytest_asyncio.fixture
async def model_stack(temporal_address, database_url, tmp_path, temporal_env, db, openai_server):
    settings = make_settings(temporal_address, database_url, tmp_path, guess_model="gpt-4o")
    async with running_stack(settings, temporal_env.client, db) as s:
        yield s


async def test_a_model_answers_through_the_schema_and_unknown_choices_fall_back(model_stack, openai_server, make_partner):
    http = model_stack.http
    acme = await make_partner()
    acme.token = await client_credentials(http, acme)
    openai_server.reply_tool_call("submit_result", {
        "title": "Quarterly churn plan", "agent_type": "plan", "prompt": "Write a plan to cut churn by 10% next quarter.",
        "model": "gpt-4o", "confidence": 0.85})
    r = await http.post(GUESS, json={"description": "we lose too many customers, what should we do next quarter"},
                        headers=acme.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["title"], body["agent_type"], body["model"], body["confidence"]) == \
        ("Quarterly churn plan", "plan", "gpt-4o", 0.85)
    assert body["create_payload"]["description"] == "Write a plan to cut churn by 10% next quarter."
    sent = openai_server.chat_requests()[-1].body
    assert sent["model"] == "gpt-4o"
    assert sent["messages"][-1] == {"role": "user", "content": "we lose too many customers, what should we do next quarter"}
    tool = next(t["function"] for t in sent["tools"] if t["function"]["name"] == "submit_result")
    assert tool["parameters"]["properties"]["agent_type"]["enum"] == ["build", "plan", "general", "explore"]
    assert "gpt-4o" in tool["parameters"]["properties"]["model"]["enum"]
    assert "claude-opus" not in tool["parameters"]["properties"]["model"]["enum"]  # no key: not offered

    # A model this service does not offer, an agent type that does not exist: replaced, less sure.
    openai_server.reply_tool_call("submit_result", {
        "title": "Fix the login page", "agent_type": "coder", "prompt": "Fix the login page's redirect loop.",
        "model": "gpt-9-ultra", "confidence": 0.95})
    r = await http.post(GUESS, json={"description": "fix the login redirect loop"}, headers=acme.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["agent_type"] == "build" and body["model"] == "demo" and body["confidence"] <= 0.3
    created = await http.post(TASKS, json=body["create_payload"], headers=acme.headers)
    assert created.status_code == 201, created.text


async def test_a_guessing_model_that_cannot_answer_is_503(temporal_address, database_url, tmp_path, temporal_env, db,
                                                         make_partner, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    settings = make_settings(temporal_address, database_url, tmp_path, guess_model="claude-opus")
    async with running_stack(settings, temporal_env.client, db) as s:
        acme = await make_partner()
        acme.token = await client_credentials(s.http, acme)
        r = await s.http.post(GUESS, json={"description": "Write a poem"}, headers=acme.headers)
    problem(r, 503, "guess_unavailable")
    assert r.headers["Retry-After"] == "5"


async def _suggestion(db, suggestion_id: str) -> PartnerSuggestion:
    async with db.session() as s:
        return (await s.execute(select(PartnerSuggestion).where(PartnerSuggestion.id == suggestion_id))).scalar_one()


async def test_the_prefilled_url_fills_the_embed_form_once(stack, make_partner):
    http = stack.http
    acme = await make_partner()
    acme.token = await client_credentials(http, acme)
    eu = (await http.post("/v1/partner/end_users", json={"external_id": "prefill-1"}, headers=acme.headers)).json()
    description = "Compare three CRM tools for a small bakery"
    guess = (await http.post(GUESS, json={"description": description}, headers=acme.headers)).json()
    session = (await http.post("/v1/partner/embed_sessions", json={"end_user_id": eu["end_user_id"]},
                               headers=acme.headers)).json()
    frame = f"/embed/v1/frame/{session['session_id']}?suggestion={token_of(guess['prefilled_url'])}"
    first = await http.get(frame)
    assert first.status_code == 200 and description in first.text
    again = await http.get(frame)
    assert again.status_code == 200 and description not in again.text
    # Opened on its own, the link only says where it works.
    alone = await http.get(urlsplit(guess["prefilled_url"]).path + "?" + urlsplit(guess["prefilled_url"]).query)
    assert alone.status_code == 404 and "prefilled-url" in alone.text
