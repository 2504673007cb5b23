"""``/v1/partner/sponsorships`` and ``/v1/partner/usage``: what a partner pays for its end users'
tasks and what they spent (scope ``partner:manage``, CONTRACT §14). Another partner's
sponsorship, end user or workspace is 404.

The rules are in :mod:`codetether.partners.sponsorships`; charging a task to a sponsorship is
:mod:`codetether.budgets.sponsored`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from codetether.api.deps import PartnerCaller, State
from codetether.api.edge.errors import problem_responses
from codetether.api.rest.schemas.budget import UsageList
from codetether.api.rest.schemas.sponsorships import (
    Scope,
    SponsorshipCreate,
    SponsorshipId,
    SponsorshipList,
    SponsorshipPublic,
    SponsorshipUpdate,
)
from codetether.api.state import AppState
from codetether.budgets.service import usage_csv
from codetether.partners import sponsorships as spns
from codetether.tasks.service import parse_time
from codetether.webhooks.sponsorship_alerts import SponsorshipAlerts

router = APIRouter(prefix="/v1/partner", tags=["partners"])
SponsorshipPath = Annotated[SponsorshipId, Path(description="`spn_...`")]


@router.post(
    "/sponsorships",
    operation_id="createSponsorship",
    status_code=201,
    response_model=SponsorshipPublic,
    summary="Pay for your end users' tasks up to a limit",
    description="A sponsored end user's task is charged to the narrowest sponsorship (end user, then workspace, "
    "then partner) with room for its next model turn. One sponsorship per target: a second is 409.",
    responses=problem_responses(401, 403, 404, 409, 422, 429),
)
async def create_sponsorship(body: SponsorshipCreate, partner: PartnerCaller, state: State,
                             response: Response) -> SponsorshipPublic:
    out = await spns.create_sponsorship(state.db, partner, scope=body.scope, target_id=body.target_id,
                                        limit_usd=body.limit_usd, period=body.period, on_exhaust=body.on_exhaust)
    response.headers["Location"] = f"/v1/partner/sponsorships/{out['sponsorship_id']}"
    return SponsorshipPublic(**out)


@router.get(
    "/sponsorships",
    operation_id="listSponsorships",
    response_model=SponsorshipList,
    summary="List your sponsorships with their spend",
    responses=problem_responses(401, 403, 422, 429),
)
async def list_sponsorships(
    partner: PartnerCaller,
    state: State,
    scope: Annotated[Scope | None, Query()] = None,
    target_id: Annotated[str | None, Query(max_length=40)] = None,
) -> SponsorshipList:
    rows = await spns.list_sponsorships(state.db, partner.id, scope=scope, target_id=target_id)
    return SponsorshipList(data=[SponsorshipPublic(**r) for r in rows])


@router.get(
    "/sponsorships/{sponsorship_id}",
    operation_id="getSponsorship",
    response_model=SponsorshipPublic,
    summary="Get one of your sponsorships with its spend",
    responses=problem_responses(401, 403, 404, 429),
)
async def get_sponsorship(sponsorship_id: SponsorshipPath, partner: PartnerCaller, state: State) -> SponsorshipPublic:
    return SponsorshipPublic(**await spns.get_sponsorship(state.db, partner.id, sponsorship_id))


@router.patch(
    "/sponsorships/{sponsorship_id}",
    operation_id="updateSponsorship",
    response_model=SponsorshipPublic,
    summary="Change a sponsorship's limit, period or on_exhaust",
    description="The only way to raise a sponsorship: an end user's approval of a budget question never does.",
    responses=problem_responses(401, 403, 404, 422, 429),
)
async def update_sponsorship(sponsorship_id: SponsorshipPath, body: SponsorshipUpdate, partner: PartnerCaller,
                             state: State) -> SponsorshipPublic:
    out = await spns.update_sponsorship(state.db, partner.id, sponsorship_id, limit_usd=body.limit_usd,
                                        period=body.period, on_exhaust=body.on_exhaust)
    await publish_sponsorship_alerts(state, sponsorship_id)
    return SponsorshipPublic(**out)


async def publish_sponsorship_alerts(state: AppState, sponsorship_id: str) -> None:
    """After a change: a lower limit may put the spend past a threshold at once. Without Temporal
    the change still stands; the next settled turn publishes."""
    client = await state.temporal_or_none()
    if client is not None:
        await SponsorshipAlerts(state.db, state.settings, client).check_sponsorship(sponsorship_id)


@router.delete(
    "/sponsorships/{sponsorship_id}",
    operation_id="deleteSponsorship",
    status_code=204,
    summary="End a sponsorship",
    description="Its end users are charged to the next sponsorship that covers them, or to their own budget.",
    responses=problem_responses(401, 403, 404, 429),
)
async def delete_sponsorship(sponsorship_id: SponsorshipPath, partner: PartnerCaller, state: State) -> Response:
    await spns.delete_sponsorship(state.db, partner.id, sponsorship_id)
    return Response(status_code=204)


@router.get(
    "/usage", operation_id="getPartnerUsage", response_model=UsageList,
    summary="Your end users' model spend by end user, workspace or day",
    description="Settled model-turn charges of your end users in [from, to) (default: the last 30 days), sponsored or "
    "not, grouped by the end user or workspace each charge was made for, or by day. `format=csv` answers the same "
    "rows as `text/csv`.",
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}, **problem_responses(401, 403, 422, 429)},
)
async def get_partner_usage(
    partner: PartnerCaller,
    state: State,
    group_by: Annotated[Literal["end_user", "workspace", "day"], Query()] = "end_user",
    from_: Annotated[str | None, Query(alias="from", max_length=40, json_schema_extra={"format": "date-time"})] = None,
    to: Annotated[str | None, Query(max_length=40, json_schema_extra={"format": "date-time"})] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> UsageList | Response:
    data = await spns.usage(state.db, partner.id, group_by, parse_time("from", from_), parse_time("to", to))
    if format == "csv":
        return Response(usage_csv(data), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="partner-usage-by-{group_by}.csv"'})
    return UsageList(data=data)
