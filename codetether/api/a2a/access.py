"""Who calls the A2A face and which tasks they may reach: the principal that
``codetether/api/a2a/routes.py`` authenticated (with the scopes a method needs), and the caller's
own tasks (another user's task is "not found", as in REST). Used by ``handler.py`` and ``sending.py``.
"""

from __future__ import annotations

from a2a.server.context import ServerCallContext
from a2a.utils.errors import InvalidRequestError

from codetether.api.a2a.errors import HTTP_REQUEST_ID_KEY, a2a_error
from codetether.api.auth import Principal
from codetether.core.db import Database
from codetether.core.errors import ServiceError
from codetether.core.models import Task
from codetether.tasks import service as taskops

PRINCIPAL_KEY = "codetether_principal"
# ``context.state`` key of the JSON-RPC params as sent (set by ``routes.py``'s context builder).
RAW_PARAMS_KEY = "codetether_raw_params"
__all__ = ["HTTP_REQUEST_ID_KEY", "PRINCIPAL_KEY", "RAW_PARAMS_KEY", "find_task", "load_task", "principal_of"]


def principal_of(context: ServerCallContext, *scopes: str) -> Principal:
    principal: Principal | None = context.state.get(PRINCIPAL_KEY)
    if principal is None:  # the route authenticates first; this is a guard
        raise InvalidRequestError("not authenticated", data={"code": "unauthenticated"})
    missing = [s for s in scopes if s not in principal.scopes]
    if missing:
        # JSON-RPC's invalid-request error, with the stable code REST uses (the SDK maps error
        # types exactly, so this stays an InvalidRequestError rather than a subclass).
        raise InvalidRequestError(
            f"this call needs the scope(s): {', '.join(missing)}", data={"code": "insufficient_scope"}
        )
    return principal


async def load_task(db: Database, task_id: str, principal: Principal) -> Task:
    try:
        return await taskops.load_task(db, task_id, principal.user_id)
    except ServiceError as err:
        raise a2a_error(err) from None


async def find_task(db: Database, task_id: str, principal: Principal) -> Task | None:
    try:
        return await taskops.load_task(db, task_id, principal.user_id)
    except ServiceError:
        return None
