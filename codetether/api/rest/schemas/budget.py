"""REST schemas of the budget and usage routes (CONTRACT §13)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class BudgetPublic(BaseModel):
    period: Literal["month"]
    limit_usd: float | None = Field(description="null: no limit")
    spent_usd: float = Field(description="Settled model spend this period.")
    reserved_usd: float = Field(description="Reserved by model turns under way.")
    remaining_usd: float | None
    period_start: str
    period_end: str
    on_exhaust: Literal["ask", "fail"]


class BudgetUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"limit_usd": 25, "on_exhaust": "ask"}]})
    limit_usd: float | None = Field(gt=0, le=1_000_000, description="The monthly limit in USD; null removes it.")
    on_exhaust: Literal["ask", "fail"] = "ask"


class UsageRow(BaseModel):
    key: str
    tasks: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


class UsageList(BaseModel):
    data: list[UsageRow]
