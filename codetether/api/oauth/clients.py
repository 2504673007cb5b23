"""``/v1/oauth/clients``: the OAuth clients a signed-in user registers and owns (create, list,
get, delete). Answers problem+json like the rest of the ``/v1`` API; needs ``account:manage``.
Administrators manage every client with ``codetether oauth-clients``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from codetether.accounts.credentials import OAUTH_SCOPES
from codetether.accounts.oauth_clients import (
    OAuthClientError,
    create_oauth_client,
    delete_oauth_client,
    get_oauth_client,
    list_oauth_clients,
)
from codetether.api.deps import AccountManage, State
from codetether.api.edge.errors import Problem, problem_responses
from codetether.api.edge.idempotency import shown_once

router = APIRouter(tags=["oauth"])


class OAuthClientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=200)]
    redirect_uris: Annotated[list[str], Field(min_length=1, max_length=10)]
    public: bool = Field(default=False, description="A public client has no secret and must use PKCE (S256).")
    scopes: list[str] | None = Field(default=None, description="Scopes the client may request; default: yours.")


class OAuthClientOut(BaseModel):
    client_id: str
    name: str
    public: bool
    redirect_uris: list[str]
    scopes: list[str]
    owner_id: str | None
    created_at: str | None


class OAuthClientCreated(OAuthClientOut):
    client_secret: str | None = Field(
        default=None, description="Shown only in this response (confidential clients; null in an idempotent replay)."
    )
    notice: str | None = Field(default=None, description="Set in an idempotent replay: the secret was shown once.")


class OAuthClientList(BaseModel):
    data: list[OAuthClientOut]


@router.post("/v1/oauth/clients", operation_id="createOAuthClient", status_code=201, response_model=OAuthClientCreated,
             summary="Register an OAuth client owned by you", responses=problem_responses(401, 403, 422, 429))
async def create_client(body: OAuthClientCreate, request: Request, response: Response, principal: AccountManage,
                        state: State) -> OAuthClientCreated:
    # Default: what the caller holds that a client may hold (never account:manage).
    scopes = body.scopes if body.scopes is not None else [s for s in principal.scopes if s in OAUTH_SCOPES]
    extra = [s for s in scopes if s in OAUTH_SCOPES and s not in principal.scopes and principal.auth_method != "console"]
    if extra:
        raise Problem(403, "insufficient_scope", f"you cannot let a client request scopes you do not hold: {', '.join(extra)}")
    try:
        out = await create_oauth_client(
            state.db, name=body.name, redirect_uris=body.redirect_uris, public=body.public,
            owner_id=principal.user_id, scopes=scopes,
        )
    except OAuthClientError as err:
        raise Problem(422, "invalid_oauth_client", str(err)) from None
    shown_once(request, response, {"client_secret": None})
    return OAuthClientCreated(**out)


@router.get("/v1/oauth/clients", operation_id="listOAuthClients", response_model=OAuthClientList,
            summary="List the OAuth clients you own", responses=problem_responses(401, 403, 429))
async def list_clients(principal: AccountManage, state: State) -> OAuthClientList:
    return OAuthClientList(data=[OAuthClientOut(**c) for c in await list_oauth_clients(state.db, principal.user_id)])


@router.get("/v1/oauth/clients/{client_id}", operation_id="getOAuthClient", response_model=OAuthClientOut,
            summary="Get one of your OAuth clients", responses=problem_responses(401, 403, 404, 429))
async def get_client(client_id: str, principal: AccountManage, state: State) -> OAuthClientOut:
    found = await get_oauth_client(state.db, client_id, owner_id=principal.user_id)
    if found is None:
        raise Problem(404, "oauth_client_not_found", f"no OAuth client {client_id!r}")
    return OAuthClientOut(**found)


@router.delete("/v1/oauth/clients/{client_id}", operation_id="deleteOAuthClient", status_code=204,
               summary="Delete one of your OAuth clients, revoking every token and grant it holds",
               responses=problem_responses(401, 403, 404, 429))
async def delete_client(client_id: str, principal: AccountManage, state: State) -> Response:
    if not await delete_oauth_client(state.db, client_id, owner_id=principal.user_id):
        raise Problem(404, "oauth_client_not_found", f"no OAuth client {client_id!r}")
    return Response(status_code=204)
