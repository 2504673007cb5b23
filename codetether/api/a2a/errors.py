"""How the A2A face shows a domain refusal: a :class:`ServiceError` becomes the JSON-RPC error
a2a-sdk sends, chosen from the error's own status and code; ``data.code`` is the stable code REST
uses. Raised from every method of ``codetether/api/a2a/handler.py``.
"""

from __future__ import annotations

from a2a.utils.errors import (
    A2AError,
    InternalError,
    InvalidParamsError,
    InvalidRequestError,
    TaskNotCancelableError,
    TaskNotFoundError,
)

from codetether.core.errors import ServiceError


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
