"""Account and catalog routes: ``/v1/automation/me`` and ``/models`` (codebases: ``codebases.py``)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from codetether.api.deps import Catalog, CurrentPrincipal
from codetether.api.edge.errors import problem_responses
from codetether.agent.pricing import public_pricing

router = APIRouter(prefix="/v1/automation", tags=["account"])


class RateLimitInfo(BaseModel):
    limit: int | None
    remaining: int | None
    reset: int


class Me(BaseModel):
    user_id: str
    email: str
    tier: str
    scopes: list[str]
    auth_method: str
    rate_limit: RateLimitInfo
    concurrent_tasks_limit: int | None


class ModelPricing(BaseModel):
    input_per_mtok_usd: float
    output_per_mtok_usd: float
    cached_input_per_mtok_usd: float | None = None


class ModelOut(BaseModel):
    id: str
    name: str
    provider: str
    available: bool
    default: bool
    description: str
    context_window: int | None = Field(None, description="Tokens the model reads at most (prompt and answer); null when unknown.")
    max_output_tokens: int | None = Field(None, description="Tokens the model writes at most in one answer; null when unknown.")
    pricing: ModelPricing | None = Field(None, description="US dollars per million tokens; null when unknown.")


class ModelList(BaseModel):
    data: list[ModelOut]
    default_model: str


@router.get("/me", operation_id="getMe", response_model=Me, summary="Who am I (test credentials)",
            responses=problem_responses(401, 429))
async def me(principal: CurrentPrincipal, request: Request) -> Me:
    info = getattr(request.state, "rate_limit", None)
    if info is None:
        limit = principal.rate_limit
        info = {"limit": limit, "remaining": limit, "reset": int(time.time()) + 60}
    return Me(
        user_id=principal.user_id,
        email=principal.email,
        tier=principal.tier,
        scopes=principal.scopes,
        auth_method=principal.auth_method,
        rate_limit=RateLimitInfo(**info),
        concurrent_tasks_limit=principal.concurrency_limit,
    )


@router.get("/models", operation_id="listModels", response_model=ModelList, summary="Models and whether they are available",
            responses=problem_responses(401, 429))
async def models(_principal: CurrentPrincipal, catalog: Catalog) -> ModelList:
    return ModelList(
        data=[
            ModelOut(
                id=m.name,
                name=m.name,
                provider=m.provider,
                available=m.available,
                default=m.name == catalog.default_model,
                description=m.description,
                context_window=m.context_window,
                max_output_tokens=m.max_output_tokens,
                pricing=public_pricing(m),
            )
            for m in catalog.public_list()
        ],
        default_model=catalog.default_model,
    )
