"""Per-user cap on requests held open: ``?wait=`` long-polls and SSE streams.

A stream on a ``needs_input`` task can last days, so without a cap one user could hold any
number of connections (and their database polls). Each API process counts, per user, the
requests it is holding; past ``CODETETHER_MAX_OPEN_STREAMS_PER_USER`` (default 20) a new one is
refused with ``429 too_many_open_streams`` and a ``Retry-After``. The count is per process:
several replicas behind a load balancer each allow that many.

Used by ``GET /v1/automation/tasks/{id}?wait=N`` (:meth:`StreamSlots.hold`), by the SSE form of
``GET /v1/automation/tasks/{id}/events`` and the console's ``GET /console/tasks/{id}/stream``
(:meth:`StreamSlots.take` before the response, :class:`HeldEventSourceResponse` releases it when
the stream ends, whichever way), by MCP's ``wait_for_task`` and its ``GET /mcp`` stream, and by
A2A's streaming calls. Each face calls the same object (``stream_slots(state)``); the refusal is a
``ServiceError``, so each face shows it its own way.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import asynccontextmanager
from collections.abc import AsyncIterator, Callable

from sse_starlette import EventSourceResponse

from codetether.core.errors import ServiceError

RETRY_AFTER_SECONDS = 5


class StreamSlots:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: defaultdict[str, int] = defaultdict(int)

    def open_for(self, user_id: str) -> int:
        return self._open.get(user_id, 0)

    def take(self, user_id: str) -> Callable[[], None]:
        """Takes a slot or raises the 429; returns the release function (safe to call twice)."""
        if self._open[user_id] >= self.limit:
            raise ServiceError(
                429,
                "too_many_open_streams",
                f"you already hold {self.limit} long-polls or event streams open, the most allowed at once; "
                "close one, or poll without ?wait=",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        self._open[user_id] += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self._open[user_id] -= 1
            if self._open[user_id] <= 0:
                del self._open[user_id]

        return release

    @asynccontextmanager
    async def hold(self, user_id: str) -> AsyncIterator[None]:
        release = self.take(user_id)
        try:
            yield
        finally:
            release()


def stream_slots(state) -> StreamSlots:
    slots = state.extras.get("stream_slots")
    if slots is None:
        slots = state.extras["stream_slots"] = StreamSlots(state.settings.max_open_streams_per_user)
    return slots


class HeldEventSourceResponse(EventSourceResponse):
    """An SSE response that gives its stream slot back when it ends, however it ends."""

    def __init__(self, *args, release: Callable[[], None], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._release = release

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()
