"""The guesser's stored suggestions: a prefilled URL's token gives its create body back once,
never after it expired, never to another partner, and to only one of callers racing for it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import update

from codetether.core.ids import utcnow
from codetether.core.models import PartnerSuggestion
from codetether.partners.suggestions import (
    SUGGESTION_TTL,
    prefilled_url,
    store_suggestion,
    take_suggestion,
)

PAYLOAD = {"title": "Export invoices", "description": "Export invoices as CSV", "agent_type": "build", "model": "demo"}


async def test_a_token_is_taken_once(db, make_partner):
    acme = await make_partner()
    stored = await store_suggestion(db, partner_id=acme.partner_id, create_payload=PAYLOAD)
    assert stored.suggestion_id.startswith("sug_") and stored.token.startswith("sgt_")
    assert abs((stored.expires_at - utcnow()) - SUGGESTION_TTL) < timedelta(seconds=5)
    assert await take_suggestion(db, stored.token, partner_id=acme.partner_id) == PAYLOAD
    assert await take_suggestion(db, stored.token, partner_id=acme.partner_id) is None


async def test_unknown_foreign_and_expired_tokens_give_nothing(db, make_partner):
    acme, other = await make_partner(), await make_partner()
    stored = await store_suggestion(db, partner_id=acme.partner_id, create_payload=PAYLOAD, end_user_id="eu_x")
    assert await take_suggestion(db, "sgt_" + "a" * 43, partner_id=acme.partner_id) is None
    assert await take_suggestion(db, stored.token[4:], partner_id=acme.partner_id) is None
    # Another partner's attempt does not spend it.
    assert await take_suggestion(db, stored.token, partner_id=other.partner_id) is None

    expired = await store_suggestion(db, partner_id=acme.partner_id, create_payload=PAYLOAD)
    async with db.write_session() as s:
        await s.execute(update(PartnerSuggestion).where(PartnerSuggestion.id == expired.suggestion_id)
                        .values(expires_at=utcnow() - timedelta(seconds=1)))
        await s.commit()
    assert await take_suggestion(db, expired.token, partner_id=acme.partner_id) is None
    assert await take_suggestion(db, stored.token, partner_id=acme.partner_id) == PAYLOAD


async def test_racing_callers_get_it_once(db, make_partner):
    acme = await make_partner()
    stored = await store_suggestion(db, partner_id=acme.partner_id, create_payload=PAYLOAD)
    got = await asyncio.gather(*(take_suggestion(db, stored.token, partner_id=acme.partner_id) for _ in range(8)))
    assert [g for g in got if g is not None] == [PAYLOAD]


def test_prefilled_url_carries_the_token():
    url = prefilled_url("https://ct.example.com/", "sgt_a+b/c")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "ct.example.com", "/embed/v1/frame")
    assert parse_qs(parts.query) == {"suggestion": ["sgt_a+b/c"]}


async def test_expired_suggestions_are_cleared_when_a_new_one_is_stored(db, make_partner):
    acme = await make_partner()
    old = await store_suggestion(db, partner_id=acme.partner_id, create_payload=PAYLOAD)
    async with db.write_session() as s:
        await s.execute(update(PartnerSuggestion).where(PartnerSuggestion.id == old.suggestion_id)
                        .values(expires_at=utcnow() - timedelta(seconds=1)))
        await s.commit()
    await store_suggestion(db, partner_id=acme.partner_id, create_payload=PAYLOAD)
    async with db.session() as s:
        assert await s.get(PartnerSuggestion, old.suggestion_id) is None
