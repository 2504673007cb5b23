"""What a signed reply link (``/r/<token>``, served by ``api/reply/``) may do: answer one question.

:func:`resolve` checks the token and the task behind it; :func:`answer` sends the reply through
:func:`codetether.tasks.conversation.provide_input`, the same path as ``POST …/tasks/{id}/input``, with
``via="link"``. A link whose question is still pending is ``PENDING``; one whose question was
answered (a ``task.message`` event names its action) is ``ANSWERED`` (409); anything else
(tampered, expired, another channel's token, a task that was cancelled or timed out while waiting,
a task that is gone) is :class:`LinkNotFound`, with no detail.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from temporalio.client import Client

from codetether.tasks import conversation
from codetether.core.config import Settings
from codetether.tasks.conversation import ConversationError
from codetether.core.db import Database
from codetether.core.models import Task, TaskEvent
from codetether.replies.tokens import LinkClaim, verify_link
from codetether.tasks.contracts import MESSAGE_EVENT, VIA_LINK, TaskStatus
from codetether.tasks.view import required_action_public

PENDING = "pending"
ANSWERED = "answered"


class LinkNotFound(Exception):
    """The link does not (or no longer) answer anything; the page says only that."""


@dataclass
class LinkTarget:
    claim: LinkClaim
    task: Task
    state: str  # PENDING or ANSWERED

    @property
    def question(self) -> str:
        return (self.task.required_action or {}).get("prompt", "") if self.state == PENDING else ""

    @property
    def action(self) -> dict:
        """The pending required action as the task shows it (kind, options, plan, …)."""
        return (required_action_public(self.task) or {}) if self.state == PENDING else {}


async def _answered(db: Database, task_id: str, action_id: str) -> bool:
    async with db.session() as s:
        rows = await s.execute(
            select(TaskEvent.body).where(TaskEvent.task_id == task_id, TaskEvent.type == MESSAGE_EVENT)
        )
        for (body,) in rows:
            if (json.loads(body).get("message") or {}).get("required_action_id") == action_id:
                return True
    return False


async def resolve(db: Database, settings: Settings, token: str) -> LinkTarget:
    claim = verify_link(settings, token)
    if claim is None:
        raise LinkNotFound()
    async with db.session() as s:
        task = await s.get(Task, claim.task_id)
    if task is None:
        raise LinkNotFound()
    pending = (task.required_action or {}).get("id")
    if task.status == TaskStatus.NEEDS_INPUT.value and pending == claim.required_action_id:
        return LinkTarget(claim, task, PENDING)
    if await _answered(db, task.id, claim.required_action_id):
        return LinkTarget(claim, task, ANSWERED)
    raise LinkNotFound()


async def answer(
    db: Database,
    client: Client,
    settings: Settings,
    token: str,
    message: str | None,
    *,
    choice: str | None = None,
    answer: Any = None,
    decision: str | None = None,
) -> LinkTarget:
    """Answers the link's question; raises :class:`LinkNotFound` or ``ConversationError``
    (``stale_required_action`` when it was already answered)."""
    target = await resolve(db, settings, token)
    if target.state == ANSWERED:
        raise ConversationError(conversation.STALE_REQUIRED_ACTION, "this question was already answered")
    try:
        task = await conversation.provide_input(
            db, client, target.task, message, target.claim.required_action_id, via=VIA_LINK, sender=None,
            choice=choice, answer=answer, decision=decision,
        )
    except ConversationError as err:
        if err.code == conversation.TASK_NOT_WAITING:
            # Answered or cancelled between the check and the update: resolve raises LinkNotFound
            # for a cancelled task; otherwise another answer won the race.
            await resolve(db, settings, token)
            raise ConversationError(conversation.STALE_REQUIRED_ACTION, "this question was already answered") from None
        raise
    return LinkTarget(target.claim, task, ANSWERED)
