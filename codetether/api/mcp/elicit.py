"""Asking the MCP host for the answer to a task's pending ``required_action`` (MCP elicitation).

``wait_for_task`` (``codetether/api/mcp/server.py``) calls :func:`ask` when the task waits in
``needs_input`` and the caller's session declared the ``elicitation`` capability (form mode).
The host gets an ``elicitation/create`` request on the tool call's own response stream:

- ``message``: the question's prompt; for an ``approval`` the prompt followed by the plan
  (``required_action.artifact``);
- ``requestedSchema``: a flat object (what the MCP spec allows: primitive properties only).
  A ``question`` asks for a string ``answer``, an enum of the ``options`` when it has options. An
  ``approval`` or ``budget`` asks for ``decision`` (enum ``approve`` / ``reject``) and an optional
  ``message`` (the reason; a rejection's feedback goes to the agent); a ``budget`` also for an
  optional number ``add_usd`` (how much more may be spent).

``accept`` becomes an :class:`Answer` that the caller submits through the same service as
``POST /v1/automation/tasks/{id}/input`` (``codetether/tasks/conversation.py``), so the same rules
refuse a wrong one (``codetether/tasks/answers.py``). ``decline``, ``cancel``, an error from the
host, or no answer within :data:`ELICIT_TIMEOUT_SECONDS` leave the action unanswered (None).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.session import ServerSession
from mcp.shared.exceptions import MCPError, NoBackChannelError
from mcp.shared.message import ServerMessageMetadata
from mcp_types import ElicitRequest, ElicitRequestFormParams, ElicitResult
from pydantic import ValidationError

from codetether.tasks.contracts import (
    ACTION_BUDGET,
    ACTION_QUESTION,
    APPROVE,
    DECISION_KINDS,
    DECISIONS,
)

log = logging.getLogger(__name__)

# How long a host may take to answer one elicitation (a person reads and decides) before the
# tool returns the task still waiting; the held call keeps one of the user's stream slots.
ELICIT_TIMEOUT_SECONDS = 900.0


@dataclass(frozen=True)
class Answer:
    """An answer as ``POST …/input`` takes it (CONTRACT §12)."""

    message: str | None = None
    choice: str | None = None
    answer: Any = None
    decision: str | None = None


def can_elicit(ctx: Context) -> bool:
    """Whether the caller's session declared form-mode elicitation. An empty ``elicitation``
    object means form mode (the spec's reading for clients older than the two modes); a client
    that declared only ``url`` mode cannot fill in a form."""
    caps = ctx.client_capabilities
    wanted = caps.elicitation if caps is not None else None
    if wanted is None:
        return False
    return wanted.form is not None or wanted.url is None


def _plan_text(action: dict) -> str:
    artifact = action.get("artifact") or {}
    content = artifact.get("content")
    if not content:
        return ""
    return f"\n\n--- {artifact.get('name') or 'plan.md'} ---\n{content.rstrip()}\n---"


def elicitation_of(action: dict) -> tuple[str, dict]:
    """The ``message`` and ``requestedSchema`` of the elicitation for ``action`` (a task's
    public ``required_action``)."""
    kind = action.get("kind") or ACTION_QUESTION
    prompt = action.get("prompt") or "The agent waits for your answer."
    if kind in DECISION_KINDS:
        properties: dict[str, dict] = {
            "decision": {"type": "string", "title": "Decision", "enum": list(DECISIONS),
                         "description": "approve to go on, reject to stop (or, for a plan, to have it revised)."},
            "message": {"type": "string", "title": "Message",
                        "description": "Why; with reject, what should change (the agent reads it)."},
        }
        if kind == ACTION_BUDGET:
            properties["add_usd"] = {"type": "number", "title": "Add (USD)", "minimum": 0,
                                     "description": "With approve: how much more may be spent (more than 0)."}
        message = prompt + _plan_text(action) if kind != ACTION_BUDGET else prompt
        return message, {"type": "object", "properties": properties, "required": ["decision"]}
    field: dict[str, Any] = {"type": "string", "title": "Answer"}
    options = action.get("options")
    if options:
        field["enum"] = list(options)
    return prompt, {"type": "object", "properties": {"answer": field}, "required": ["answer"]}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def answer_of(action: dict, content: dict[str, Any]) -> Answer:
    """What an accepted elicitation's ``content`` answers. Values are passed on as given (a
    wrong option or decision is refused by the answer rules), but only strings become text."""
    kind = action.get("kind") or ACTION_QUESTION
    if kind in DECISION_KINDS:
        decision = content.get("decision")
        decision = decision if isinstance(decision, str) else None
        answer = None
        add = content.get("add_usd")
        if kind == ACTION_BUDGET and decision == APPROVE and add is not None and not isinstance(add, bool):
            answer = {"add_usd": add}
        return Answer(message=_text(content.get("message")), decision=decision, answer=answer)
    given = content.get("answer")
    if action.get("options"):
        # An option is chosen; anything else is refused as invalid_choice, not taken as words.
        return Answer(choice=given if isinstance(given, str) else repr(given))
    return Answer(message=_text(given))


async def ask(ctx: Context, action: dict) -> Answer | None:
    """Sends the elicitation for ``action`` to the caller; its answer, or None when there is none."""
    message, schema = elicitation_of(action)
    session: ServerSession = ctx.request_context.session
    request = ElicitRequest(params=ElicitRequestFormParams(message=message, requested_schema=schema))
    try:
        result = await session.send_request(
            request, ElicitResult, request_read_timeout_seconds=ELICIT_TIMEOUT_SECONDS,
            metadata=ServerMessageMetadata(related_request_id=ctx.request_context.request_id),
        )
    except NoBackChannelError:
        # A connection that cannot carry requests to the client (no session): nothing to ask on.
        log.info("elicitation for %s not sent: the connection has no session", action.get("id"))
        return None
    except (MCPError, ValidationError, TimeoutError) as err:
        log.info("elicitation for %s got no answer: %s", action.get("id"), err)
        return None
    if result.action != "accept":
        return None
    return answer_of(action, dict(result.content or {}))
