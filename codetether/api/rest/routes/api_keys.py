"""``/v1/api-keys``: the signed-in user's API keys (the key itself is shown only on create).

Every route needs a first-party credential (``codetether.api.deps.AccountManage``): an API key holding
``account:manage`` or a console session. OAuth access tokens get ``403 insufficient_scope``, so a
partner app can never mint a key that would outlive its own revocation.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from codetether.api.deps import AccountManage, State
from codetether.api.edge.errors import Problem, problem_responses
from codetether.api.edge.idempotency import shown_once
from codetether.accounts.service import create_api_key, list_api_keys, revoke_api_key
from codetether.core.ids import iso
from codetether.core.models import ApiKey
from codetether.accounts.credentials import ALL_SCOPES, SCOPES, parse_scopes

router = APIRouter(prefix="/v1/api-keys", tags=["api-keys"])


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=200)] = "default"
    scopes: list[str] | None = Field(default=None, description="Defaults to the caller's own scopes.",
                                     json_schema_extra={"items": {"type": "string", "enum": list(ALL_SCOPES)}})


class ApiKeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    scopes: list[str]
    created_at: str
    last_used_at: str | None


class ApiKeyCreated(ApiKeyOut):
    key: str | None = Field(
        description="The API key. It is shown only in this response (null in an idempotent replay)."
    )
    notice: str | None = Field(default=None, description="Set in an idempotent replay: the key was shown once.")


class ApiKeyList(BaseModel):
    data: list[ApiKeyOut]


def _out(row: ApiKey) -> dict:
    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "scopes": list(row.scopes or []),
        "created_at": iso(row.created_at) or "",
        "last_used_at": iso(row.last_used_at),
    }


@router.post("", operation_id="createApiKey", status_code=201, response_model=ApiKeyCreated,
             summary="Create an API key", responses=problem_responses(401, 403, 422, 429))
async def create_key(body: ApiKeyCreate, request: Request, response: Response, principal: AccountManage,
                     state: State) -> ApiKeyCreated:
    try:
        scopes = parse_scopes(body.scopes, default=tuple(principal.scopes))
    except ValueError as err:
        raise Problem(422, "invalid_scope", str(err), errors=[{"field": "scopes", "message": str(err), "type": "invalid_scope"}]) from None
    extra = [s for s in scopes if s not in principal.scopes]
    if extra and principal.auth_method != "console":
        # A key can never grant more than the credential that made it (a console session is the
        # user themself).
        raise Problem(403, "insufficient_scope", f"you cannot grant scopes you do not hold: {', '.join(extra)}")
    row, secret = await create_api_key(state.db, principal.user_id, name=body.name, scopes=scopes)
    shown_once(request, response, {"key": None})
    return ApiKeyCreated(**_out(row), key=secret)


@router.get("", operation_id="listApiKeys", response_model=ApiKeyList, summary="List your API keys",
            responses=problem_responses(401, 403, 429))
async def list_keys(principal: AccountManage, state: State) -> ApiKeyList:
    return ApiKeyList(data=[ApiKeyOut(**_out(r)) for r in await list_api_keys(state.db, principal.user_id)])


@router.delete("/{key_id}", operation_id="deleteApiKey", status_code=204, summary="Revoke an API key",
               responses=problem_responses(401, 403, 404, 429))
async def delete_key(key_id: str, principal: AccountManage, state: State) -> Response:
    if not await revoke_api_key(state.db, principal.user_id, key_id):
        raise Problem(404, "api_key_not_found", f"no API key {key_id!r}")
    return Response(status_code=204)
