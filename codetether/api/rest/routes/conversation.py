"""Conversation routes: answer a task's question and continue its conversation.

- ``POST /v1/automation/tasks/{task_id}/input``: the human-in-the-loop reply (only while
  ``needs_input``); 200 with the task once it resumed.
- ``POST /v1/automation/tasks/{task_id}/messages``: a reply while ``needs_input``, a message for the
  agent's next turn while ``queued``/``running``, a follow-up run once finished.
- ``POST /v1/automation/messages``: Zapier's Send Message; with ``conversation_id`` as above,
  without one a new task.

The logic lives in :mod:`codetether.tasks.conversation`; this module maps HTTP onto it. Its
refusals (``ConversationError``, a ``ServiceError``) become problems at the edge
(``codetether/api/edge/errors.py``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from codetether.api.deps import Catalog, MessagesWrite, State, TemporalClient
from codetether.api.edge.errors import problem_responses
from codetether.api.rest.routes.tasks import load_task, resolve_model, start_new_task, to_public
from codetether.api.rest.schemas.conversation import (
    ConversationMessageCreate,
    ConversationTask,
    InputCreate,
    MessageCreate,
)
from codetether.api.rest.schemas.tasks import TaskPublic
from codetether.tasks import conversation
from codetether.tasks.conversation import Delivery
from codetether.core.models import Task
from codetether.tasks.launch import NewTask
from codetether.tasks.view import task_to_dict
from codetether.tasks.contracts import VIA_API

router = APIRouter(prefix="/v1/automation", tags=["conversation"])

def _delivered(delivery: Delivery) -> ConversationTask:
    return ConversationTask.model_validate(
        {**task_to_dict(delivery.task), "conversation_id": delivery.task.id, "delivered_as": delivery.delivered_as}
    )


async def _send(state, client, principal, request: Request, task: Task, message: str) -> ConversationTask:
    delivery = await conversation.send_message(
        state.db,
        client,
        state.settings,
        task,
        message,
        concurrency_limit=principal.concurrency_limit,
        request_id=getattr(request.state, "request_id", None),
        via=VIA_API,
        sender=principal.email,
    )
    return _delivered(delivery)


@router.post(
    "/tasks/{task_id}/input",
    operation_id="provideTaskInput",
    response_model=TaskPublic,
    summary="Answer the task's pending question",
    description=(
        "Only while the task is `needs_input`. The reply goes to the agent as the answer to its "
        "`ask_user` call (a `choice` as the chosen option) and the task resumes; an `approval` takes a "
        "`decision` (`approve` continues, `reject` sends `message` back for a revised plan). Refused with "
        "409 `task_not_waiting` in any other status, 409 `stale_required_action` when `required_action_id` "
        "is not the pending action, and 422 `invalid_choice`, `invalid_answer`, `decision_required` or "
        "`invalid_decision` when the answer does not fit the action (the task keeps waiting)."
    ),
    responses=problem_responses(401, 403, 404, 409, 422, 429, 503),
)
async def provide_input(
    task_id: str, body: InputCreate, principal: MessagesWrite, state: State, client: TemporalClient
) -> TaskPublic:
    task = await load_task(state, task_id, principal.user_id)
    task = await conversation.provide_input(
        state.db, client, task, body.message, body.required_action_id, via=VIA_API, sender=principal.email,
        choice=body.choice, answer=body.answer, decision=body.decision,
    )
    return to_public(task)


@router.post(
    "/tasks/{task_id}/messages",
    operation_id="sendTaskMessage",
    response_model=ConversationTask,
    summary="Send a message to the task's conversation",
    description=(
        "While `needs_input` the message answers the question; while `queued` or `running` the agent "
        "reads it at its next turn; once the task finished it starts a follow-up run (new `run_id`, "
        "same `task_id`, the conversation so far). `delivered_as` says which happened."
    ),
    responses=problem_responses(401, 403, 404, 409, 422, 429, 503),
)
async def send_task_message(
    task_id: str,
    body: MessageCreate,
    request: Request,
    principal: MessagesWrite,
    state: State,
    client: TemporalClient,
) -> ConversationTask:
    task = await load_task(state, task_id, principal.user_id)
    return await _send(state, client, principal, request, task, body.message)


@router.post(
    "/messages",
    operation_id="sendMessage",
    response_model=ConversationTask,
    summary="Send a message (Zapier Send Message)",
    description=(
        "With `conversation_id` (a task_id) the message continues that task's conversation exactly like "
        "`POST /tasks/{task_id}/messages` (200). Without one it starts a new task titled after the "
        "message (201, `delivered_as: new_task`)."
    ),
    responses={
        201: {"description": "A new conversation (task) was started", "model": ConversationTask},
        **problem_responses(401, 402, 403, 404, 409, 422, 429, 503),
    },
)
async def send_message(
    body: ConversationMessageCreate,
    request: Request,
    response: Response,
    principal: MessagesWrite,
    state: State,
    catalog: Catalog,
    client: TemporalClient,
) -> ConversationTask:
    if body.conversation_id is not None:
        task = await load_task(state, body.conversation_id, principal.user_id)
        return await _send(state, client, principal, request, task, body.message)

    spec = resolve_model(catalog, body.model)
    new = NewTask(
        owner_id=principal.user_id,
        title=conversation.derive_title(body.message),
        description=body.message,
        agent_type=body.agent_type or "general",
        model=spec.name,
        codebase_id=body.codebase_id,
        concurrency_limit=principal.concurrency_limit,
        request_id=getattr(request.state, "request_id", None),
        max_cost_usd=principal.capped_cost(None),
    )
    task = await start_new_task(request, state, client, new)
    response.status_code = 201
    response.headers["Location"] = f"/v1/automation/tasks/{task.id}"
    return _delivered(Delivery(task, conversation.DELIVERED_NEW_TASK))
