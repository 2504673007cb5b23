"""How the A2A face shows a refusal: a :class:`ServiceError` becomes the JSON-RPC error a2a-sdk
sends, chosen from the error's own status and code; ``data.code`` is the stable code REST uses.
Raised from every method of ``codetether/api/a2a/handler.py``.

Anything else that escapes a method is a fault, not a refusal: :func:`guarded` logs it with the
request id and answers a bare ``InternalError`` carrying that id. The SDK would otherwise put
``str(exception)`` in the error message, and a database error's text holds the SQL statement and
its parameters.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

from a2a.server.context import ServerCallContext
from a2a.utils.errors import (
    A2AError,
    InternalError,
    InvalidParamsError,
    InvalidRequestError,
    TaskNotCancelableError,
    TaskNotFoundError,
)

from codetether.core.errors import ServiceError

log = logging.getLogger(__name__)

# ``context.state`` key of the HTTP request id (set by ``routes.py``'s context builder).
HTTP_REQUEST_ID_KEY = "codetether_request_id"


def a2a_error(err: ServiceError) -> A2AError:
    data = {"code": err.code}
    if err.status == 404:
        return TaskNotFoundError(err.message, data=data)
    if err.code == "task_not_cancellable":
        return TaskNotCancelableError(err.message, data=data)
    if err.status in (400, 422):
        return InvalidParamsError(err.message, data=data)
    if err.status >= 500:
        return InternalError(err.message, data=data)
    return InvalidRequestError(err.message, data=data)


def internal_error(err: BaseException, context: ServerCallContext | None) -> InternalError:
    """Logs an unexpected error with the request id and returns the error the caller sees."""
    request_id = context.state.get(HTTP_REQUEST_ID_KEY) if context is not None else None
    log.error("A2A request %s failed", request_id, exc_info=(type(err), err, err.__traceback__))
    message = "internal error" + (f"; quote request id {request_id} when reporting it" if request_id else "")
    # The error's data becomes google.rpc.ErrorInfo metadata: strings only.
    return InternalError(message, data={"code": "internal_error", **({"request_id": request_id} if request_id else {})})


def guarded(method: Callable[..., Any]) -> Callable[..., Any]:
    """Wraps a handler method (a coroutine or an async generator) so that only A2A errors leave it."""
    if inspect.isasyncgenfunction(method):
        @functools.wraps(method)
        async def stream(self, params, context: ServerCallContext, *args, **kwargs):
            try:
                async for item in method(self, params, context, *args, **kwargs):
                    yield item
            except A2AError:
                raise
            except Exception as err:
                raise internal_error(err, context) from None
        return stream

    @functools.wraps(method)
    async def call(self, params, context: ServerCallContext, *args, **kwargs):
        try:
            return await method(self, params, context, *args, **kwargs)
        except A2AError:
            raise
        except Exception as err:
            raise internal_error(err, context) from None
    return call
