"""REST schemas of the partner API (``/v1/partner/...``, CONTRACT §14)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from codetether.api.rest.schemas.safe import StoredText
from codetether.api.rest.schemas.tasks import AgentType

ExternalId = Annotated[str, Field(min_length=1, max_length=200, description="Your id for it.",
                                  examples=["user_8842"])]
Email = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$", examples=["ada@example.com"])]
Name = Annotated[str, Field(min_length=1, max_length=200)]
EndUserId = Annotated[str, Field(max_length=40, pattern=r"^eu_[0-9a-z]{1,37}$")]


class EndUserCreate(StoredText):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"external_id": "user_8842", "email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace",
         "workspace_external_id": "team_17"}]})

    external_id: ExternalId
    email: Email | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    workspace_external_id: Annotated[str | None, Field(
        default=None, min_length=1, max_length=200,
        description="Your id of the workspace (team, organisation) it belongs to; default: a workspace of its own.")]


class EndUserUpdate(StoredText):
    """Only the fields sent change; ``null`` clears a profile field."""

    model_config = ConfigDict(extra="forbid")

    email: Email | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    workspace_external_id: Annotated[str | None, Field(default=None, min_length=1, max_length=200)]


class EndUserPublic(BaseModel):
    end_user_id: str = Field(description="`eu_...`: send it as `CodeTether-End-User` to act for this user.")
    external_id: str
    workspace_id: str = Field(description="`ws_...`")
    workspace_external_id: str | None
    status: Literal["provisioned", "claimed"]
    email: str | None
    first_name: str | None
    last_name: str | None
    created_at: str
    updated_at: str
    claimed_at: str | None


class EndUserList(BaseModel):
    data: list[EndUserPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class GuessRequest(StoredText):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"description": "Every Monday, summarise last week's support tickets and list the top 3 complaints"}]})

    # Checked by the guesser (422 invalid_description), so an empty or long one has its own code.
    description: str = Field(description="What the person wants done, in their words: 1 to 4,000 characters.",
                             json_schema_extra={"minLength": 1, "maxLength": 4000})


class GuessEstimate(BaseModel):
    """Percentiles over this service's completed tasks like the suggestion; null without any."""

    cost_usd_p50: float | None
    cost_usd_p90: float | None
    minutes_p50: float | None = Field(description="Minutes from creation to completion.")


class SuggestedTask(BaseModel):
    """A body `POST /v1/automation/tasks` accepts as it is."""

    title: str
    description: str
    agent_type: AgentType
    model: str


class GuessPublic(BaseModel):
    suggestion_id: str = Field(examples=["sug_01j0000000000000000000000"])
    title: str
    agent_type: AgentType
    prompt: str
    model: str
    confidence: float = Field(ge=0, le=1, description="How sure the guesser is that this is the task meant.")
    estimate: GuessEstimate
    create_payload: SuggestedTask
    prefilled_url: str = Field(description="Opens the embed frame with this task filled in: single use, valid for an hour.")
    expires_at: str = Field(description="When prefilled_url stops working.")


class EmbedSessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"end_user_id": "eu_01jd8x2k4m5n6p7q8r9s0t1v2w", "max_cost_usd": 2.5}]})

    end_user_id: EndUserId
    max_cost_usd: Annotated[float | None, Field(
        default=None, gt=0, le=100_000,
        description="The cost cap (USD) of every task created with this session's secret.")]


class EmbedSessionPublic(BaseModel):
    client_secret: str = Field(description=(
        "`ctes_...`: put it on `<codetether-tasks client-secret=\"...\">`. A bearer credential of this end "
        "user only (tasks:read tasks:write messages:write) until `expires_at`; shown once."))
    expires_at: str = Field(description="At most 15 minutes from now (ISO 8601 UTC).")
    session_id: str = Field(description="`emb_...`, the public part of the secret.")
    end_user_id: str
    max_cost_usd: float | None = None
