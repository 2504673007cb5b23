"""Budget and usage routes: ``GET``/``PUT /v1/automation/budget``, ``GET /v1/automation/usage``
(CONTRACT §13). The rules are in ``codetether/budgets/``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from codetether.api.deps import AccountManage, SettingsDep, State, TasksRead
from codetether.api.edge.errors import problem_responses
from codetether.api.state import AppState
from codetether.api.rest.schemas.budget import BudgetPublic, BudgetUpdate, UsageList
from codetether.budgets import service as budgets
from codetether.webhooks.budget_alerts import BudgetAlerts
from codetether.tasks.service import parse_time

router = APIRouter(prefix="/v1/automation", tags=["account"])


@router.get("/budget", operation_id="getBudget", response_model=BudgetPublic, summary="This month's budget and spend",
            responses=problem_responses(401, 403, 429))
async def get_budget(principal: TasksRead, state: State, settings: SettingsDep) -> BudgetPublic:
    return BudgetPublic(**await budgets.budget_view(state.db, settings, principal.user_id))


@router.put("/budget", operation_id="setBudget", response_model=BudgetPublic, summary="Set the monthly budget",
            responses=problem_responses(401, 403, 422, 429))
async def set_budget(body: BudgetUpdate, principal: AccountManage, state: State, settings: SettingsDep) -> BudgetPublic:
    view = await budgets.set_budget(state.db, settings, principal.user_id, body.limit_usd, body.on_exhaust)
    await publish_budget_alerts(state, principal.user_id)
    return BudgetPublic(**view)


async def publish_budget_alerts(state: AppState, user_id: str) -> None:
    """After a limit change (REST or console): a lower limit may put this month's spend past a
    threshold at once. Without Temporal the change still stands; the next settled turn publishes."""
    client = await state.temporal_or_none()
    if client is not None:
        await BudgetAlerts(state.db, state.settings, client).check(user_id)


@router.get(
    "/usage", operation_id="getUsage", response_model=UsageList, summary="Model spend by day, model or tag",
    description="Settled model-turn charges in [from, to) (default: the last 30 days), grouped. `format=csv` "
    "answers the same rows as `text/csv`.",
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}, **problem_responses(401, 403, 422, 429)},
)
async def get_usage(
    principal: TasksRead,
    state: State,
    group_by: Annotated[Literal["day", "model", "tag"], Query()] = "day",
    from_: Annotated[str | None, Query(alias="from", max_length=40, json_schema_extra={"format": "date-time"})] = None,
    to: Annotated[str | None, Query(max_length=40, json_schema_extra={"format": "date-time"})] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> UsageList | Response:
    data = await budgets.usage(state.db, principal.user_id, group_by, parse_time("from", from_), parse_time("to", to))
    if format == "csv":
        return Response(budgets.usage_csv(data), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="usage-by-{group_by}.csv"'})
    return UsageList(data=data)
