"""``POST /v1/partner/embed_sessions``: a short-lived client secret for the embedded task element
``<codetether-tasks>`` (CONTRACT §14 Embed), asked by the partner's backend with its client
credentials token (scope ``partner:manage``). Another partner's end user is 404.

The rules are in :mod:`codetether.partners.embed`; the element and its frame are served by
``codetether/api/embed/routes.py``.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from codetether.api.deps import PartnerCaller, State
from codetether.api.edge.errors import problem_responses
from codetether.api.rest.schemas.partners import EmbedSessionCreate, EmbedSessionPublic
from codetether.core.ids import iso
from codetether.partners import embed

router = APIRouter(prefix="/v1/partner", tags=["partners"])


@router.post(
    "/embed_sessions",
    operation_id="createEmbedSession",
    status_code=201,
    response_model=EmbedSessionPublic,
    summary="Create an embed session: a 15-minute client secret for <codetether-tasks>",
    description=(
        "The secret acts for this end user only, with the task scopes, and expires after at most 15 minutes; "
        "ask for a new one before then (the element's `session-url`). With `max_cost_usd` every task created "
        "with it is capped at that cost."
    ),
    responses=problem_responses(401, 403, 404, 422, 429),
)
async def create_embed_session(body: EmbedSessionCreate, partner: PartnerCaller, state: State,
                               response: Response) -> EmbedSessionPublic:
    out = await embed.create_session(state.db, partner, body.end_user_id, max_cost_usd=body.max_cost_usd)
    response.headers["Cache-Control"] = "no-store"
    return EmbedSessionPublic(**{**out, "expires_at": iso(out["expires_at"])})
