"""The MCP tools and resources of CodeTether (the official ``mcp`` SDK's MCPServer).

Every tool calls the same services as REST (``codetether/tasks/service.py``, ``codetether/tasks/conversation.py``,
``codetether/codebases/service.py``, the model catalog) for the caller that ``codetether/api/mcp/routes.py``
authenticated; its principal travels on the HTTP request the SDK hands to each call. Outputs are
the REST response models, so tools have JSON Schemas for input and structured output that match
``/openapi.json``. Refusals come back as MCP tool errors (``isError``) whose text carries the
stable snake_case code, e.g. ``task_not_found: no task 'task_...'``.

``wait_for_task`` asks a client that declared ``elicitation`` the task's pending question itself
(``elicitation/create``, ``codetether/api/mcp/elicit.py``), submits an accepted answer through
the same service as ``POST …/input`` and waits on; other clients get the task in ``needs_input``.

Resources: ``codetether://tasks/{task_id}`` (the task as JSON) and
``codetether://tasks/{task_id}/result`` (its final answer as text).

Capabilities say what is served and nothing more: ``tools`` and ``resources`` (no list ever
changes and resources cannot be subscribed to, so ``listChanged`` and ``subscribe`` are false).
No prompts, no completions, no logging: the SDK would declare ``prompts`` for its default (empty)
handlers, so :func:`_serve_only_ours` drops them.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from pydantic import Field

from codetether.api.auth import Principal
from codetether.api.mcp import elicit
from codetether.api.rest.routes.meta import ModelList, ModelOut
from codetether.api.rest.schemas.codebases import CodebaseList, CodebasePublic
from codetether.api.rest.schemas.conversation import ConversationTask
from codetether.api.rest.schemas.tasks import FileAttachmentIn, TaskList, TaskPublic, UrlAttachmentIn
from codetether.api.state import AppState
from codetether.api.edge.streamcap import stream_slots
from codetether.tasks.tags import check_tags
from codetether.tasks import conversation
from codetether.tasks import service as taskops
from codetether.codebases import service as codebase_svc
from codetether.tasks.conversation import Delivery
from codetether.core.db import poll_until
from codetether.core.errors import ServiceError
from codetether.core.logging import request_id_var
from codetether.core.models import Task
from codetether.tasks.launch import NewTask
from codetether.tasks.view import task_to_dict
from codetether.tasks.contracts import WAITING_STATUSES, DecisionName, TaskStatus, TaskStatusName

AgentType = Literal["general", "build", "plan", "explore"]
MAX_WAIT_SECONDS = 300
WAIT_POLL_SECONDS = 0.25
# wait_for_task reports progress at least this often, so hosts see it is alive.
PROGRESS_EVERY_SECONDS = 5.0

INSTRUCTIONS = (
    "CodeTether runs durable AI-agent tasks. create_task starts one; wait_for_task follows it "
    "until it completes or asks a question (status needs_input, the question in "
    "required_action.prompt); answer_question replies; send_message continues a finished task."
)


def _public(task: Task) -> TaskPublic:
    return TaskPublic.model_validate(task_to_dict(task))


def tool_error(err: ServiceError) -> ToolError:
    """How MCP shows a domain refusal: a tool error whose text starts with the stable code."""
    return ToolError(f"{err.code}: {err.message}")


def _serve_only_ours(mcp: MCPServer) -> None:
    """Drops the SDK's prompt handlers: it derives the declared capabilities from the handlers it
    holds, and CodeTether has no prompts. The SDK offers no public way to leave them out."""
    handlers = mcp._lowlevel_server._request_handlers  # noqa: SLF001
    for method in ("prompts/list", "prompts/get"):
        handlers.pop(method, None)


def build_server(state: AppState, version: str) -> MCPServer:
    # subscriptions=False: no subscriptions/listen stream, which under protocol 2026-07-28 would
    # declare listChanged and resource subscriptions that nothing here ever sends.
    mcp = MCPServer(name="codetether", title="CodeTether", version=version, instructions=INSTRUCTIONS,
                    subscriptions=False)
    _serve_only_ours(mcp)

    def principal_of(ctx: Context, *scopes: str) -> Principal:
        request = ctx.request_context.request
        # Tools run in the session manager's tasks, outside the HTTP request's logging context.
        request_id_var.set(request_id_of(ctx))
        principal = getattr(getattr(request, "state", None), "principal", None)
        if principal is None:
            raise ToolError("unauthenticated: send 'Authorization: Bearer <API key or access token>'")
        missing = [s for s in scopes if s not in principal.scopes]
        if missing:
            raise ToolError(f"insufficient_scope: this tool needs the scope(s): {', '.join(missing)}")
        return principal

    def request_id_of(ctx: Context) -> str | None:
        return getattr(getattr(ctx.request_context.request, "state", None), "request_id", None)

    async def reserved_task_id(ctx: Context) -> str | None:
        # With an Idempotency-Key on the HTTP request the task id is reserved (codetether/api/edge/idempotency.py).
        reserve = getattr(getattr(ctx.request_context.request, "state", None), "reserved_resource_id", None)
        return await reserve("task") if reserve is not None else None

    async def load(task_id: str, principal: Principal) -> Task:
        try:
            return await taskops.load_task(state.db, task_id, principal.user_id)
        except ServiceError as err:
            raise tool_error(err) from None

    @mcp.tool(description="Create an agent task. Returns the task (status queued); follow it with wait_for_task.")
    async def create_task(
        ctx: Context,
        title: Annotated[str, Field(min_length=1, max_length=200, description="A short title.")],
        description: Annotated[str, Field(min_length=1, max_length=100_000, description="The instructions for the agent.")],
        agent_type: Annotated[AgentType, Field(description="build, plan, general or explore.")] = "general",
        model: Annotated[str | None, Field(max_length=100, description="A model from list_models.")] = None,
        priority: Annotated[int, Field(ge=-1000, le=1000)] = 0,
        codebase_id: Annotated[str | None, Field(max_length=40, description="A codebase from list_codebases.")] = None,
        metadata: Annotated[dict | None, Field(description=(
            "Returned as given; at most 16 KiB of JSON, nested at most 32 levels, integers within "
            "±(2^53 - 1), no NaN/Infinity, no NUL in strings."))] = None,
        tags: Annotated[list[str] | None, Field(max_length=20, description=(
            "Labels (1 to 64 characters of A-Z a-z 0-9 _ . : -) to find the task by in list_tasks."))] = None,
        output_schema: Annotated[dict | None, Field(description=(
            "A JSON Schema (root type object, at most 16 KiB) the answer must match; the finished task "
            "then carries the answer as result_json."))] = None,
        attachments: Annotated[list[FileAttachmentIn | UrlAttachmentIn] | None, Field(max_length=10, description=(
            "Input files: {file_id} of an upload (POST /v1/automation/files) or {url, name?} for the service to "
            "download; the agent finds each under attachments/<name>."))] = None,
    ) -> TaskPublic:
        principal = principal_of(ctx, "tasks:write")
        try:
            spec = taskops.resolve_model(state.catalog, model)
            new = NewTask(
                owner_id=principal.user_id, title=title.strip(), description=description, agent_type=agent_type,
                model=spec.name, priority=priority, metadata=metadata or {}, codebase_id=codebase_id,
                concurrency_limit=principal.concurrency_limit, request_id=request_id_of(ctx),
                tags=check_tags(tags), output_schema=output_schema,
                attachments=[a.model_dump(exclude_none=True) for a in attachments or []],
                max_cost_usd=principal.capped_cost(None),
            )
            task = await taskops.start_task(state.db, await state.temporal(), state.settings, new,
                                            task_id=await reserved_task_id(ctx))
        except ServiceError as err:
            raise tool_error(err) from None
        return _public(task)

    @mcp.tool(description="Get a task by id: status, result, the pending question (required_action), error.")
    async def get_task(ctx: Context, task_id: Annotated[str, Field(max_length=40)]) -> TaskPublic:
        return _public(await load(task_id, principal_of(ctx, "tasks:read")))

    @mcp.tool(description="List your tasks, newest first. Pass next_cursor back as cursor for the next page.")
    async def list_tasks(
        ctx: Context,
        status: Annotated[
            list[TaskStatusName] | None,
            Field(description="Only these statuses."),
        ] = None,
        tag: Annotated[list[str] | None, Field(max_length=20, description="Only tasks having every one of these tags.")] = None,
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Field(max_length=500)] = None,
    ) -> TaskList:
        principal = principal_of(ctx, "tasks:read")
        try:
            filt = taskops.TaskFilter(statuses=list(status) if status else None, tags=check_tags(tag, field_name="tag") or None)
            rows, next_cursor = await taskops.list_tasks(state.db, principal.user_id, filt, limit=limit, cursor=cursor)
        except ServiceError as err:
            raise tool_error(err) from None
        return TaskList(data=[_public(t) for t in rows], next_cursor=next_cursor)

    @mcp.tool(description=(
        "Wait until the task completes, fails, is cancelled or asks a question (needs_input), at most "
        f"timeout_seconds (max {MAX_WAIT_SECONDS}). Reports progress notifications while it waits; "
        "returns the task as it is then. If your client supports elicitation, a question is asked "
        "through it instead and waiting goes on once it is answered (declining returns the task in needs_input)."
    ))
    async def wait_for_task(
        ctx: Context,
        task_id: Annotated[str, Field(max_length=40)],
        timeout_seconds: Annotated[int, Field(ge=1, le=MAX_WAIT_SECONDS)] = 60,
    ) -> TaskPublic:
        principal = principal_of(ctx, "tasks:read")
        try:
            # A held call counts toward the same per-user cap as REST's ?wait= and SSE.
            release = stream_slots(state).take(principal.user_id)
        except ServiceError as err:
            raise tool_error(err) from None
        try:
            return await _wait(ctx, principal, task_id, timeout_seconds)
        finally:
            release()

    async def _wait(ctx: Context, principal: Principal, task_id: str, timeout_seconds: int) -> TaskPublic:
        seen: tuple | None = None
        last_report = 0.0

        async def report(task: Task, elapsed: float) -> None:
            # On a change, and every PROGRESS_EVERY_SECONDS while nothing changes.
            nonlocal seen, last_report
            note = (task.progress or {}).get("message")
            key = (task.status, note)
            if key != seen or elapsed - last_report >= PROGRESS_EVERY_SECONDS:
                message = f"{task.status}: {note}" if note else task.status
                await ctx.report_progress(round(min(elapsed, timeout_seconds), 2), float(timeout_seconds), message)
                seen, last_report = key, elapsed

        asks = elicit.can_elicit(ctx)
        while True:
            # After an answer the wait starts over: the time a person took to answer is not the task's.
            last_report = 0.0
            task = await poll_until(lambda: load(task_id, principal), lambda t: t.status in WAITING_STATUSES,
                                    float(timeout_seconds), WAIT_POLL_SECONDS, on_read=report)
            if task.status != TaskStatus.NEEDS_INPUT.value or not asks:
                return _public(task)
            action = _public(task).model_dump(mode="json")["required_action"] or {}
            answer = await elicit.ask(ctx, action)
            if answer is None:
                return _public(await load(task_id, principal))
            try:
                if answer.message is not None:
                    taskops.check_message(answer.message)
                await conversation.provide_input(
                    state.db, await state.temporal(), await load(task_id, principal), answer.message,
                    action.get("id"), choice=answer.choice, answer=answer.answer, decision=answer.decision)
            except ServiceError as err:
                # Answered meanwhile through another channel: follow the task on from there.
                if err.code not in (conversation.STALE_REQUIRED_ACTION, conversation.TASK_NOT_WAITING):
                    raise tool_error(err) from None

    @mcp.tool(description=(
        "Answer the pending required_action of a task in needs_input; the task resumes. For a question: "
        "message (words), or choice (one of required_action.options), or answer (a value matching "
        "required_action.answer_schema). For an approval (kind approval: the plan is required_action.artifact) "
        "or a budget: decision approve or reject, with message as the reason (a rejection's feedback goes "
        "back to the agent). required_action_id, if given, must be the pending action's id."
    ))
    async def answer_question(
        ctx: Context,
        task_id: Annotated[str, Field(max_length=40)],
        message: Annotated[str | None, Field(max_length=100_000)] = None,
        required_action_id: Annotated[str | None, Field(max_length=40)] = None,
        choice: Annotated[str | None, Field(max_length=200)] = None,
        answer: Any = None,
        decision: DecisionName | None = None,
    ) -> TaskPublic:
        principal = principal_of(ctx, "messages:write")
        task = await load(task_id, principal)
        try:
            if message is not None:
                taskops.check_message(message)
            task = await conversation.provide_input(state.db, await state.temporal(), task, message, required_action_id,
                                                    choice=choice, answer=answer, decision=decision)
        except ServiceError as err:
            raise tool_error(err) from None
        return _public(task)

    @mcp.tool(description=(
        "Send a message. With task_id: answers a pending question, reaches a running agent at its next turn, "
        "or starts a follow-up run of a finished task (delivered_as says which). Without: starts a new task."
    ))
    async def send_message(
        ctx: Context,
        message: Annotated[str, Field(min_length=1, max_length=100_000)],
        task_id: Annotated[str | None, Field(max_length=40, description="The conversation (a task id).")] = None,
        model: Annotated[str | None, Field(max_length=100)] = None,
        agent_type: AgentType | None = None,
        codebase_id: Annotated[str | None, Field(max_length=40)] = None,
    ) -> ConversationTask:
        principal = principal_of(ctx, "messages:write")
        try:
            taskops.check_message(message)
            if task_id is not None:
                task = await load(task_id, principal)
                delivery = await conversation.send_message(
                    state.db, await state.temporal(), state.settings, task, message,
                    concurrency_limit=principal.concurrency_limit, request_id=request_id_of(ctx),
                )
            else:
                spec = taskops.resolve_model(state.catalog, model)
                new = NewTask(
                    owner_id=principal.user_id, title=conversation.derive_title(message), description=message,
                    agent_type=agent_type or "general", model=spec.name, codebase_id=codebase_id,
                    concurrency_limit=principal.concurrency_limit, request_id=request_id_of(ctx),
                    max_cost_usd=principal.capped_cost(None),
                )
                task = await taskops.start_task(state.db, await state.temporal(), state.settings, new,
                                                task_id=await reserved_task_id(ctx))
                delivery = Delivery(task, conversation.DELIVERED_NEW_TASK)
        except ServiceError as err:
            raise tool_error(err) from None
        return ConversationTask.model_validate(
            {**task_to_dict(delivery.task), "conversation_id": delivery.task.id, "delivered_as": delivery.delivered_as}
        )

    @mcp.tool(description="Cancel a queued, running or waiting task. Cancelling a cancelled task is fine.")
    async def cancel_task(ctx: Context, task_id: Annotated[str, Field(max_length=40)]) -> TaskPublic:
        principal = principal_of(ctx, "tasks:write")
        try:
            outcome = await taskops.cancel_task(state.db, await state.temporal(), task_id, principal.user_id)
        except ServiceError as err:
            raise tool_error(err) from None
        return _public(outcome.task)

    @mcp.tool(description="The models tasks can use, with whether each is available on this server.")
    async def list_models(ctx: Context) -> ModelList:
        principal_of(ctx)
        catalog = state.catalog
        return ModelList(
            data=[
                ModelOut(id=m.name, name=m.name, provider=m.provider, available=m.available,
                         default=m.name == catalog.default_model, description=m.description)
                for m in catalog.public_list()
            ],
            default_model=catalog.default_model,
        )

    @mcp.tool(description="Your registered codebases (repositories that build/plan/explore tasks can work on).")
    async def list_codebases(ctx: Context) -> CodebaseList:
        principal = principal_of(ctx, "codebases:read")
        rows = await codebase_svc.list_codebases(state.db, principal.user_id)
        return CodebaseList(data=[CodebasePublic.model_validate(codebase_svc.codebase_to_dict(c)) for c in rows])

    async def resource_task(ctx: Context, task_id: str) -> Task:
        try:
            principal = principal_of(ctx, "tasks:read")
        except ToolError as err:
            raise ResourceError(str(err)) from None
        try:
            return await taskops.load_task(state.db, task_id, principal.user_id)
        except ServiceError as err:
            raise ResourceError(f"{err.code}: {err.message}") from None

    @mcp.resource("codetether://tasks/{task_id}", name="task", mime_type="application/json",
                  description="A task as JSON (the same object as GET /v1/automation/tasks/{task_id}).")
    async def task_resource(task_id: str, ctx: Context) -> str:
        return json.dumps(task_to_dict(await resource_task(ctx, task_id)), ensure_ascii=False)

    @mcp.resource("codetether://tasks/{task_id}/result", name="task_result", mime_type="text/plain",
                  description="The final answer of a completed task.")
    async def task_result(task_id: str, ctx: Context) -> str:
        task = await resource_task(ctx, task_id)
        if task.status != "completed" or task.result is None:
            raise ResourceError(f"task_not_completed: the task is {task.status}")
        return task.result

    return mcp
