"""REST schemas of a partner's sponsorships and usage (``/v1/partner/sponsorships``,
``/v1/partner/usage``, CONTRACT §14)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

SponsorshipId = Annotated[str, Field(max_length=40, pattern=r"^spn_[0-9a-z]{1,36}$")]
Scope = Literal["partner", "workspace", "end_user"]
Period = Literal["month", "none"]
OnExhaust = Literal["ask", "fail"]
LimitUsd = Annotated[float, Field(gt=0, le=1_000_000, description="The most the sponsorship pays per period, in USD.")]


class SponsorshipCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"scope": "workspace", "target_id": "ws_01jf2m3n4p5q6r7s8t9v0w1x2y", "limit_usd": 25, "period": "month"}]})

    scope: Scope = Field(description="Who it covers: all your end users, one workspace, or one end user.")
    target_id: Annotated[str | None, Field(
        default=None, max_length=40,
        description="`ws_...` for scope workspace, `eu_...` for scope end_user (required for both); "
                    "omitted (or your partner id) for scope partner.")]
    limit_usd: LimitUsd
    period: Period = Field(default="month", description="`month`: the limit renews each calendar month (UTC); "
                                                         "`none`: one limit for all time.")
    on_exhaust: OnExhaust = Field(default="ask", description="When no covering sponsorship can pay the next turn: "
                                                             "`ask` parks the task (kind budget), `fail` ends it.")


class SponsorshipUpdate(BaseModel):
    """Only the fields sent change (none of them may be null)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"limit_usd": 50}]})

    # Not nullable: an omitted field is left as it is, an explicit null is a 422.
    limit_usd: LimitUsd = Field(default=None)  # type: ignore[assignment]
    period: Period = Field(default=None)  # type: ignore[assignment]
    on_exhaust: OnExhaust = Field(default=None)  # type: ignore[assignment]


class SponsorshipPublic(BaseModel):
    sponsorship_id: str = Field(description="`spn_...`")
    scope: Scope
    target_id: str = Field(description="The end user, workspace or partner it covers.")
    limit_usd: float
    period: Period
    on_exhaust: OnExhaust
    spent_usd: float = Field(description="Settled spend charged to it this period.")
    reserved_usd: float = Field(description="Reserved by model turns under way.")
    remaining_usd: float
    period_start: str
    period_end: str | None = Field(description="null for period none.")
    created_at: str
    updated_at: str


class SponsorshipList(BaseModel):
    data: list[SponsorshipPublic]
