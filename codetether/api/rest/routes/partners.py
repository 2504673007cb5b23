"""``/v1/partner/end_users``: a partner's end users (scope ``partner:manage``, held only by a
partner's client credentials token). Another partner's end user is 404, as if it did not exist.

The rules are in :mod:`codetether.partners.end_users`; the token exchange that also creates end
users is ``codetether/api/oauth/token_exchange.py``. ``POST /v1/partner/guess`` (the guesser) runs
the guess workflow and is in :mod:`codetether.partners.guesser`, ``estimates`` and ``suggestions``.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from temporalio.client import WorkflowFailureError
from temporalio.service import RPCError

from codetether.api.deps import PartnerActing, PartnerCaller, State, TemporalClient
from codetether.api.edge.errors import problem_responses
from codetether.api.edge.public_base import public_base
from codetether.api.rest.schemas.partners import (
    EndUserCreate,
    EndUserId,
    EndUserList,
    EndUserPublic,
    EndUserUpdate,
    GuessEstimate,
    GuessPublic,
    GuessRequest,
    SuggestedTask,
)
from codetether.core.errors import ServiceError
from codetether.core.ids import iso, new_id
from codetether.partners import end_users as eus
from codetether.partners import guesser
from codetether.partners.contracts import GUESS_WORKFLOW, GuessAnswer, guess_workflow_id
from codetether.partners.estimates import estimate
from codetether.partners.suggestions import prefilled_url, store_suggestion

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/partner", tags=["partners"])
EndUserPath = Annotated[EndUserId, Path(description="`eu_...`")]


@router.post(
    "/end_users",
    operation_id="createEndUser",
    status_code=201,
    response_model=EndUserPublic,
    summary="Create (or find) an end user by your external id",
    description="Idempotent on `external_id`: the same id answers the existing end user with 200.",
    responses={200: {"description": "The end user already existed", "model": EndUserPublic},
               **problem_responses(401, 403, 422, 429)},
)
async def create_end_user(body: EndUserCreate, partner: PartnerCaller, state: State, response: Response) -> EndUserPublic:
    out = await eus.provision(
        state.db, partner, body.external_id,
        eus.EndUserProfile(email=body.email, first_name=body.first_name, last_name=body.last_name),
        workspace_external_id=body.workspace_external_id,
    )
    if not out.created:
        response.status_code = 200
    response.headers["Location"] = f"/v1/partner/end_users/{out.end_user['end_user_id']}"
    return EndUserPublic(**out.end_user)


@router.get(
    "/end_users",
    operation_id="listEndUsers",
    response_model=EndUserList,
    summary="List your end users, newest first",
    responses=problem_responses(400, 401, 403, 422, 429),
)
async def list_end_users(
    partner: PartnerCaller,
    state: State,
    external_id: Annotated[str | None, Query(max_length=200)] = None,
    workspace_id: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[eus.Status | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> EndUserList:
    rows, next_cursor = await eus.list_end_users(state.db, partner.id, limit=limit, cursor=cursor,
                                                 external_id=external_id, workspace_id=workspace_id, status=status)
    return EndUserList(data=[EndUserPublic(**r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/end_users/{end_user_id}",
    operation_id="getEndUser",
    response_model=EndUserPublic,
    summary="Get one of your end users",
    responses=problem_responses(401, 403, 404, 429),
)
async def get_end_user(end_user_id: EndUserPath, partner: PartnerCaller, state: State) -> EndUserPublic:
    return EndUserPublic(**await eus.get_end_user(state.db, partner.id, end_user_id))


@router.patch(
    "/end_users/{end_user_id}",
    operation_id="updateEndUser",
    response_model=EndUserPublic,
    summary="Change an end user's profile or workspace",
    responses=problem_responses(401, 403, 404, 422, 429),
)
async def update_end_user(end_user_id: EndUserPath, body: EndUserUpdate, partner: PartnerCaller,
                          state: State) -> EndUserPublic:
    sent = body.model_fields_set
    profile = eus.EndUserProfile(**{k: getattr(body, k) for k in ("email", "first_name", "last_name") if k in sent})
    clear = tuple(k for k in ("email", "first_name", "last_name") if k in sent and getattr(body, k) is None)
    kwargs = {"workspace_external_id": body.workspace_external_id} if "workspace_external_id" in sent else {}
    return EndUserPublic(**await eus.update_end_user(state.db, partner.id, end_user_id, profile, clear=clear, **kwargs))


@router.delete(
    "/end_users/{end_user_id}",
    operation_id="deleteEndUser",
    status_code=204,
    summary="Remove an end user: cancels its tasks and revokes its tokens",
    responses=problem_responses(401, 403, 404, 429, 503),
)
async def delete_end_user(end_user_id: EndUserPath, partner: PartnerCaller, state: State,
                          client: TemporalClient) -> Response:
    await eus.delete_end_user(state.db, client, partner, end_user_id)
    return Response(status_code=204)


@router.post(
    "/guess",
    operation_id="guessTask",
    response_model=GuessPublic,
    summary="Turn a person's description into a task to run",
    description=(
        "Asks the guessing model for a title, agent type, prompt and model, checks them against what this "
        "service offers, estimates cost and time from similar completed tasks, and stores the suggestion "
        "behind a single-use `prefilled_url` (one hour). `create_payload` is a valid `POST /v1/automation/tasks` "
        "body. Also with `CodeTether-End-User`, for one of your end users."
    ),
    responses=problem_responses(401, 403, 404, 422, 429, 503),
)
async def guess_task(body: GuessRequest, caller: PartnerActing, state: State, client: TemporalClient,
                     request: Request) -> GuessPublic:
    description = guesser.check_description(body.description)
    suggestion_id = new_id("sug")
    inp = guesser.guess_input(description, state.catalog, state.settings.guess_model)
    try:
        answer = await client.execute_workflow(
            GUESS_WORKFLOW, inp, id=guess_workflow_id(suggestion_id), task_queue=state.settings.temporal_task_queue,
            result_type=GuessAnswer, execution_timeout=timedelta(seconds=state.settings.guess_timeout_seconds),
        )
    except (WorkflowFailureError, RPCError) as err:
        log.warning("guess %s failed: %s", suggestion_id, err)
        raise ServiceError(503, "guess_unavailable", "the guessing model did not answer; try again shortly",
                           headers={"Retry-After": "5"}) from None
    suggestion = guesser.settle(answer, description, state.catalog)
    payload = suggestion.create_payload()
    est = await estimate(state.db, agent_type=suggestion.agent_type, model=suggestion.model,
                         title=suggestion.title, prompt=suggestion.prompt)
    stored = await store_suggestion(state.db, partner_id=caller.partner.id, create_payload=payload,
                                    end_user_id=caller.end_user_id, suggestion_id=suggestion_id)
    return GuessPublic(
        suggestion_id=stored.suggestion_id, title=suggestion.title, agent_type=suggestion.agent_type,
        prompt=suggestion.prompt, model=suggestion.model, confidence=suggestion.confidence,
        estimate=GuessEstimate(**est.as_dict()), create_payload=SuggestedTask(**payload),
        prefilled_url=prefilled_url(public_base(request.scope, state.settings).url, stored.token),
        expires_at=iso(stored.expires_at),
    )
