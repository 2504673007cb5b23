"""REST schemas of ``/v1/automation/codebases`` (CONTRACT §6). Credentials are write-only."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

PushPolicy = Literal["none", "branch", "pull_request"]


class HttpsTokenCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["https_token"]
    token: Annotated[str, Field(min_length=1, max_length=20_000)]


class SshKeyCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["ssh_key"]
    private_key: Annotated[str, Field(min_length=1, max_length=20_000)]


CodebaseCredentials = Annotated[HttpsTokenCredentials | SshKeyCredentials, Field(discriminator="type")]


class CodebaseCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "billing", "repository_url": "https://github.com/acme/billing.git", "ref": "main", "push": "pull_request"}]
        },
    )
    name: Annotated[str, Field(min_length=1, max_length=200)]
    repository_url: Annotated[str, Field(min_length=1, max_length=2000)]
    ref: str | None = Field(default=None, max_length=200, description="Branch, tag or commit (default: the remote's HEAD).")
    push: PushPolicy = "none"
    description: str | None = Field(default=None, max_length=2000)
    credentials: CodebaseCredentials | None = Field(default=None, description="Write-only: never returned.")


class CodebaseUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    repository_url: str | None = Field(default=None, min_length=1, max_length=2000)
    ref: str | None = Field(default=None, max_length=200)
    push: PushPolicy | None = None
    description: str | None = Field(default=None, max_length=2000)
    credentials: CodebaseCredentials | None = Field(default=None, description="null removes stored credentials.")


class CodebasePublic(BaseModel):
    id: str
    codebase_id: str
    name: str
    description: str | None
    repository_url: str | None
    ref: str | None
    push: PushPolicy
    has_credentials: bool
    created_at: str
    updated_at: str


class CodebaseList(BaseModel):
    data: list[CodebasePublic]
