"""FastAPI dependencies and their ``Annotated`` aliases, used by every router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, OAuth2AuthorizationCodeBearer
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from codetether.api.auth import ACCOUNT_MANAGE, END_USER_HEADER, Principal, unauthenticated
from codetether.api.edge.errors import Problem
from codetether.api.state import AppState
from codetether.agent.catalog import ModelCatalog
from codetether.core.config import Settings
from codetether.files.storage import FileStorage
from codetether.accounts.credentials import API_KEY_PREFIX, SCOPES
from codetether.core.models import Partner
from codetether.partners.registry import partner_for_client

# Declared for OpenAPI (both schemes appear in the spec); resolution happens in current_principal.
bearer_scheme = HTTPBearer(auto_error=False, scheme_name="bearerAuth", description="API key (ct_...) or OAuth access token")
oauth2_scheme = OAuth2AuthorizationCodeBearer(
    authorizationUrl="/oauth/authorize",
    tokenUrl="/oauth/token",
    refreshUrl="/oauth/token",
    scopes=SCOPES,
    scheme_name="oauth2",
    auto_error=False,
)


async def get_state(request: Request) -> AppState:
    return request.app.state.codetether


State = Annotated[AppState, Depends(get_state)]


async def get_settings_dep(state: State) -> Settings:
    return state.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_session(state: State) -> AsyncIterator[AsyncSession]:
    async with state.db.session() as s:
        yield s


DbSession = Annotated[AsyncSession, Depends(get_session)]


async def get_temporal(state: State) -> Client:
    return await state.temporal()


TemporalClient = Annotated[Client, Depends(get_temporal)]


async def get_storage(state: State) -> FileStorage:
    return state.storage


Storage = Annotated[FileStorage, Depends(get_storage)]


async def get_catalog(state: State) -> ModelCatalog:
    return state.catalog


Catalog = Annotated[ModelCatalog, Depends(get_catalog)]


async def current_principal(
    request: Request,
    state: State,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    _oauth: Annotated[str | None, Depends(oauth2_scheme)] = None,
) -> Principal:
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    token = bearer.credentials if bearer is not None else None
    if token is None and state.settings.allow_query_api_key:
        token = request.query_params.get("api_key")
        # Only API keys: OAuth/OIDC tokens are never taken from a URL.
        if token and not token.startswith(API_KEY_PREFIX):
            token = None
        if token:
            request.state.query_key_used = True
    if not token:
        raise unauthenticated(error=None)
    principal = await state.authenticator.authenticate(token, request.headers.get(END_USER_HEADER))
    request.state.principal = principal
    if state.on_authenticated is not None:
        await state.on_authenticated(request, principal)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_scopes(*scopes: str):
    """A dependency that checks the caller holds every scope in ``scopes``."""

    async def _check(principal: CurrentPrincipal) -> Principal:
        missing = [s for s in scopes if s not in principal.scopes]
        if missing:
            raise Problem(
                403,
                "insufficient_scope",
                f"this call needs the scope(s): {', '.join(missing)}",
                headers={
                    "WWW-Authenticate": f'Bearer realm="codetether", error="insufficient_scope", scope="{" ".join(scopes)}"'
                },
                extra={"required_scopes": list(scopes)},
            )
        return principal

    return _check


def _insufficient(scopes: tuple[str, ...], detail: str) -> Problem:
    return Problem(
        403,
        "insufficient_scope",
        detail,
        headers={"WWW-Authenticate": f'Bearer realm="codetether", error="insufficient_scope", scope="{" ".join(scopes)}"'},
        extra={"required_scopes": list(scopes)},
    )


async def require_account_manage(principal: CurrentPrincipal) -> Principal:
    """Credential management needs a first-party credential (see ``codetether.api.auth.FIRST_PARTY_AUTH_METHODS``)."""
    if principal.can_manage_account:
        return principal
    if not principal.first_party:
        raise _insufficient(
            (ACCOUNT_MANAGE,),
            "managing API keys and OAuth clients needs a first-party credential: an API key with the "
            f"{ACCOUNT_MANAGE} scope or a console session; OAuth access tokens can never do it",
        )
    raise _insufficient((ACCOUNT_MANAGE,), f"this call needs the scope(s): {ACCOUNT_MANAGE}")


TasksRead = Annotated[Principal, Depends(require_scopes("tasks:read"))]
TasksWrite = Annotated[Principal, Depends(require_scopes("tasks:write"))]
MessagesWrite = Annotated[Principal, Depends(require_scopes("messages:write"))]
CodebasesRead = Annotated[Principal, Depends(require_scopes("codebases:read"))]
CodebasesWrite = Annotated[Principal, Depends(require_scopes("codebases:write"))]
WebhooksManage = Annotated[Principal, Depends(require_scopes("webhooks:manage"))]
AccountManage = Annotated[Principal, Depends(require_account_manage)]


async def current_partner(principal: Annotated[Principal, Depends(require_scopes("partner:manage"))],
                          state: State) -> Partner:
    """The partner whose client credentials token made the call (``/v1/partner/...``)."""
    partner = await partner_for_client(state.db, principal.client_id)
    if partner is None:
        raise _insufficient(("partner:manage",), "this call needs a partner's client credentials token")
    return partner


PartnerCaller = Annotated[Partner, Depends(current_partner)]


@dataclass(frozen=True)
class PartnerCall:
    """The partner behind a call and, with ``CodeTether-End-User``, the end user it acts for."""

    partner: Partner
    end_user_id: str | None = None


async def current_partner_call(principal: CurrentPrincipal, state: State) -> PartnerCall:
    """A partner's client credentials token (scope ``partner:manage``), acting for itself or, with
    ``CodeTether-End-User``, for one of its end users (the header drops ``partner:manage`` from the
    principal, so the partner is found by the token's client)."""
    end_user_id = principal.extra.get("end_user_id")
    if principal.client_id and ("partner:manage" in principal.scopes or end_user_id):
        partner = await partner_for_client(state.db, principal.client_id)
        if partner is not None:
            return PartnerCall(partner, end_user_id)
    raise _insufficient(("partner:manage",), "this call needs a partner's client credentials token")


PartnerActing = Annotated[PartnerCall, Depends(current_partner_call)]
