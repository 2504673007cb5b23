"""``GET``/``POST /r/{token}``: answer one task question through a signed link, no API key.

``GET`` shows the task title, the question and an answer box. ``POST`` takes the form's
``message`` field, or JSON ``{"message"}``, and answers through the same service as
``POST /v1/automation/tasks/{id}/input`` (:mod:`codetether.replies.link`). JSON callers get JSON back,
browsers get a page. Single use: again is 409 ``stale_required_action``; a tampered, expired or
revoked link is 404 with nothing about the task. Each link is rate-limited on its own
(``CODETETHER_REPLY_LINK_RATE_PER_MINUTE``), on top of the per-address limit of every
unauthenticated call.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from limits import RateLimitItemPerMinute

from codetether.agent.asking import OPTION_LENGTH
from codetether.api.deps import State
from codetether.api.edge.answer_form import answer_from_form
from codetether.api.edge.errors import Problem, problem_from, problem_response
from codetether.api.edge.ratelimit import rate_limited
from codetether.api.reply import pages
from codetether.tasks import conversation
from codetether.replies import link as replylink
from codetether.tasks.conversation import ConversationError
from codetether.core.errors import ServiceError
from codetether.replies.link import ANSWERED, LinkNotFound
from codetether.tasks.contracts import DECISION_KINDS, DECISIONS

router = APIRouter(tags=["reply-links"])

MESSAGE_LIMIT = 100_000
_HTML = {"text/html": {"schema": {"type": "string"}}}
_REPLY_ACCEPTED = {
    "type": "object",
    "required": ["answered", "required_action_id"],
    "properties": {"answered": {"type": "boolean", "const": True}, "required_action_id": {"type": "string"}},
}
_ANSWER_PROPERTIES = {
    "message": {"type": "string", "maxLength": MESSAGE_LIMIT, "description": "The answer in words (or a decision's reason)."},
    "choice": {"type": "string", "maxLength": OPTION_LENGTH, "description": "One of `required_action.options`."},
    "decision": {"type": "string", "enum": list(DECISIONS), "description": "Answers an `approval` or a `budget`."},
}
_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "minProperties": 1,
                "properties": {**_ANSWER_PROPERTIES,
                               "answer": {"description": "A JSON value matching `required_action.answer_schema`."}},
            }
        },
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "minProperties": 1,
                "properties": {**_ANSWER_PROPERTIES,
                               "answer_json": {"type": "string", "description": "The `answer` as JSON text."}},
            }
        },
    },
}


def _problem_content() -> dict[str, Any]:
    return {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _both(description: str) -> dict[str, Any]:
    return {"description": description, "content": {**_HTML, **_problem_content()}}


async def _limit(request: Request, state, token: str) -> None:
    limiter = state.extras.get("rate_limiter")
    if limiter is None:
        return
    item = state.extras.get("reply_link_item")
    if item is None:
        item = state.extras["reply_link_item"] = RateLimitItemPerMinute(state.settings.reply_link_rate_per_minute)
    outcome = await limiter.hit(item, "reply-link", hashlib.sha256(token.encode()).hexdigest()[:32])
    if outcome is not None and not outcome[0]:
        raise rate_limited(outcome[1], "reply link")


def _wants_json(request: Request) -> bool:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return ctype == "application/json" or ctype.endswith("+json")


def _not_found(as_json: bool) -> Response:
    if as_json:
        return problem_response(404, "not_found", "this reply link is not valid")
    return pages.not_found_page()


@router.get(
    "/r/{token}",
    operation_id="showReplyLink",
    summary="The page of a reply link",
    description="A page with the task title, the pending question and an answer box. 409 once answered; 404 for a link "
    "that is not valid, expired or revoked.",
    response_class=Response,
    responses={200: {"description": "The question page", "content": _HTML}, 404: _both("Not a valid link"),
               409: _both("Already answered"), 429: _both("Too many requests for this link")},
)
async def show_reply_link(token: str, request: Request, state: State) -> Response:
    await _limit(request, state, token)
    try:
        target = await replylink.resolve(state.db, state.settings, token)
    except LinkNotFound:
        return pages.not_found_page()
    if target.state == ANSWERED:
        return pages.answered_page(target.task.title)
    return pages.question_page(target.task.title, target.action, preset=_preset(request, target.action))


def _preset(request: Request, action: dict) -> dict[str, str] | None:
    """``?choice=`` / ``?decision=`` of an email's per-answer link, when it fits the action."""
    choice, decision = request.query_params.get("choice"), request.query_params.get("decision")
    if choice is not None and choice in (action.get("options") or []):
        return {"choice": choice}
    if decision in DECISIONS and action.get("kind") in DECISION_KINDS:
        return {"decision": decision}
    return None


@dataclass
class _Posted:
    message: str | None = None
    choice: str | None = None
    decision: str | None = None
    answer: Any = None
    # Why the answer part could not be read (a form's field of the wrong type, JSON that is not).
    problem: str | None = None
    form: Any = None

    def read_form_answer(self, action: dict) -> None:
        """A form's answer fields, read against the action's answer_schema."""
        if self.form is not None:
            self.answer, self.problem = answer_from_form(action.get("answer_schema"), self.form)

    @property
    def structured(self) -> bool:
        return self.choice is not None or self.decision is not None or self.answer is not None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


async def _posted(request: Request) -> tuple[_Posted, bool]:
    """The posted answer and whether the caller speaks JSON."""
    if _wants_json(request):
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            raise Problem(400, "malformed_json", "the body is not valid JSON") from None
        body = body if isinstance(body, dict) else {}
        message = body.get("message")
        return _Posted(message if isinstance(message, str) else None, _text(body.get("choice")),
                       _text(body.get("decision")), body.get("answer")), True
    form = await request.form()
    message = form.get("message")
    return _Posted(message if isinstance(message, str) else None, _text(form.get("choice")),
                   _text(form.get("decision")), form=form), False


@router.post(
    "/r/{token}",
    operation_id="answerReplyLink",
    summary="Answer the question of a reply link",
    description="Form field or JSON `message`. JSON callers get `{\"answered\": true, ...}`, browsers a page. Single "
    "use: 409 `stale_required_action` once answered; 404 for a link that is not valid, expired or revoked.",
    response_class=Response,
    openapi_extra={"requestBody": _BODY},
    responses={
        200: {"description": "The answer was delivered",
              "content": {"application/json": {"schema": _REPLY_ACCEPTED}, **_HTML}},
        400: _both("Malformed JSON"),
        404: _both("Not a valid link"),
        409: _both("Already answered"),
        422: _both("No message"),
        429: _both("Too many requests for this link"),
        503: _both("The task could not be reached; try again"),
    },
)
async def answer_reply_link(token: str, request: Request, state: State) -> Response:
    await _limit(request, state, token)
    posted, as_json = await _posted(request)
    try:
        target = await replylink.resolve(state.db, state.settings, token)
    except LinkNotFound:
        return _not_found(as_json)
    posted.read_form_answer(target.action)
    if target.state == ANSWERED:
        return _answered(as_json, target.task.title)
    message = posted.message
    if posted.problem is not None or (message is not None and len(message) > MESSAGE_LIMIT) or (
        not posted.structured and (message is None or not message.strip())
    ):
        text = posted.problem or f"write an answer of 1 to {MESSAGE_LIMIT} characters"
        if as_json:
            return problem_response(422, "invalid_message", text)
        return pages.question_page(target.task.title, target.action, error=text[0].upper() + text[1:] + ".",
                                   answer=(message or "")[:MESSAGE_LIMIT], status=422)
    client = await state.temporal()
    try:
        done = await replylink.answer(state.db, client, state.settings, token, message, choice=posted.choice,
                                      answer=posted.answer, decision=posted.decision)
    except LinkNotFound:
        return _not_found(as_json)
    except ConversationError as err:
        if err.code == conversation.STALE_REQUIRED_ACTION:
            return _answered(as_json, target.task.title)
        if as_json:
            return problem_from(err)
        return pages.message_page(target.task.title, "The answer could not be delivered right now; please try again.",
                                  err.status)
    except ServiceError as err:
        # The answer does not fit the action (CONTRACT §12): the question stays open.
        if as_json:
            return problem_from(err)
        return pages.question_page(target.task.title, target.action, error=err.message[0].upper() + err.message[1:] + ".",
                                   answer=(message or "")[:MESSAGE_LIMIT], status=422)
    if as_json:
        return JSONResponse({"answered": True, "required_action_id": done.claim.required_action_id})
    return pages.sent_page(target.task.title)


def _answered(as_json: bool, title: str) -> Response:
    if as_json:
        return problem_response(409, conversation.STALE_REQUIRED_ACTION, "this question was already answered")
    return pages.answered_page(title)
