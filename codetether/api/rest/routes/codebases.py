"""``/v1/automation/codebases``: register, list, change and remove the repositories tasks work on
(``codebases:read`` / ``codebases:write``). Another user's codebase is 404. The rules live in
:mod:`codetether.codebases.service`; credentials are sealed there and never come back. Its refusals (``CodebaseError``, a
``ServiceError``) become problems at the edge (``codetether/api/edge/errors.py``).
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from codetether.api.deps import CodebasesRead, CodebasesWrite, SettingsDep, State
from codetether.api.edge.errors import problem_responses
from codetether.api.rest.schemas.codebases import CodebaseCreate, CodebaseList, CodebasePublic, CodebaseUpdate
from codetether.codebases import service as svc
from codetether.core.errors import ServiceError, not_found

router = APIRouter(prefix="/v1/automation/codebases", tags=["codebases"])


def _public(row) -> CodebasePublic:
    return CodebasePublic.model_validate(svc.codebase_to_dict(row))


def _credentials(value) -> svc.Credentials | None:
    if value is None:
        return None
    return svc.Credentials(type=value.type, token=getattr(value, "token", None), private_key=getattr(value, "private_key", None))


def _not_found(codebase_id: str) -> ServiceError:
    return not_found("codebase", codebase_id)


@router.post("", operation_id="createCodebase", status_code=201, response_model=CodebasePublic,
             summary="Register a codebase", responses=problem_responses(401, 403, 422, 429))
async def create_codebase(body: CodebaseCreate, principal: CodebasesWrite, state: State, settings: SettingsDep) -> CodebasePublic:
    row = await svc.create_codebase(
        state.db, settings, principal.user_id,
        name=body.name, repository_url=body.repository_url, ref=body.ref, push=body.push,
        description=body.description, credentials=_credentials(body.credentials),
    )
    return _public(row)


@router.get("", operation_id="listCodebases", response_model=CodebaseList, summary="Registered codebases",
            responses=problem_responses(401, 403, 429))
async def list_codebases(principal: CodebasesRead, state: State) -> CodebaseList:
    return CodebaseList(data=[_public(r) for r in await svc.list_codebases(state.db, principal.user_id)])


@router.get("/{codebase_id}", operation_id="getCodebase", response_model=CodebasePublic, summary="One codebase",
            responses=problem_responses(401, 403, 404, 429))
async def get_codebase(codebase_id: str, principal: CodebasesRead, state: State) -> CodebasePublic:
    return _public(await svc.load_codebase(state.db, principal.user_id, codebase_id))


@router.patch("/{codebase_id}", operation_id="updateCodebase", response_model=CodebasePublic, summary="Change a codebase",
              responses=problem_responses(401, 403, 404, 422, 429))
async def update_codebase(
    codebase_id: str, body: CodebaseUpdate, principal: CodebasesWrite, state: State, settings: SettingsDep
) -> CodebasePublic:
    given = body.model_fields_set
    await svc.load_codebase(state.db, principal.user_id, codebase_id)
    kwargs = {}
    for name in ("name", "repository_url", "push"):
        if name in given and getattr(body, name) is not None:
            kwargs[name] = getattr(body, name)
    for name in ("ref", "description"):
        if name in given:
            kwargs[name] = getattr(body, name)
    if "credentials" in given:
        kwargs["credentials"] = _credentials(body.credentials)
    row = await svc.update_codebase(state.db, settings, principal.user_id, codebase_id, **kwargs)
    if row is None:
        raise _not_found(codebase_id)
    return _public(row)


@router.delete("/{codebase_id}", operation_id="deleteCodebase", status_code=204, summary="Remove a codebase",
               responses=problem_responses(401, 403, 404, 429))
async def delete_codebase(codebase_id: str, principal: CodebasesWrite, state: State) -> Response:
    if not await svc.delete_codebase(state.db, principal.user_id, codebase_id):
        raise _not_found(codebase_id)
    return Response(status_code=204)
