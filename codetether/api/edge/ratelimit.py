"""Rate limits of the API (moving window, the ``limits`` library), per user and per client IP.

Every route is covered:

* **Authenticated calls** are limited per user by tier: free 60, pro 300 requests per minute,
  enterprise unlimited. The check runs right after authentication (``AppState.on_authenticated``,
  called by ``codetether.api.deps.current_principal``), so a 404 or 422 of an authenticated call is counted
  and carries the headers too.
* **Unauthenticated calls** (no bearer token: the OAuth endpoints, ``/openapi.json``, ``/docs``)
  are limited per client IP, :data:`IP_LIMIT_PER_MINUTE` a minute by default
  (``CODETETHER_RATE_LIMIT_IP_PER_MINUTE``), by :class:`RateLimitMiddleware` before the route
  runs. A call whose bearer token turns out to be invalid is counted against the IP after the
  fact (and answered 429 once the IP is over its limit), so guessing tokens is throttled as well. ``/healthz``, ``/readyz`` and ``/metrics`` are exempt: probes and scrapers
  must never be refused.

Every limited response carries ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and
``X-RateLimit-Reset`` (Unix epoch seconds at which the oldest request in the window expires, i.e.
when at least one more request is allowed). A refused call is a ``429`` problem with
``code: "rate_limited"`` and ``Retry-After`` in seconds; under ``/oauth/`` it is OAuth's error JSON
instead (``{"error": "temporarily_unavailable", "error_description"}``, same headers), which is
what OAuth clients read.

Enterprise users are never limited or counted. Their responses still carry the headers (header
values must be integers) with :data:`UNLIMITED_HEADER_VALUE` as limit and remaining, so clients
that throttle on them never do; ``GET /v1/automation/me`` reports ``limit`` and ``remaining`` as
``null`` for them.

Storage is in process memory by default. With ``CODETETHER_REDIS_URL`` set the windows live in
Redis, so several API processes share one limit; the moving-window check-and-add is one Lua script
there (and one lock per key in memory), which is what keeps the limit exact under concurrency.
If Redis cannot be reached the call is let through (fail open) and a warning is logged.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from fastapi import FastAPI, Request
from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from codetether.api.auth import Principal
from codetether.api.edge.errors import (
    OAUTH_RATE_LIMITED,
    PROBLEM_JSON,
    Problem,
    is_oauth_path,
    oauth_error_body,
    problem_body,
)
from codetether.api.edge.middleware import HTTPMiddleware
from codetether.api.state import AppState

log = logging.getLogger(__name__)

# Per client IP, for calls without a bearer token. High enough for an OAuth sign-in flow or a
# client generator fetching the spec, low enough to make credential guessing slow.
IP_LIMIT_PER_MINUTE = 120
# Shown in the headers of enterprise (unlimited) responses.
UNLIMITED_HEADER_VALUE = 1_000_000
# Operational routes that are never limited.
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
WINDOW_SECONDS = 60

STATE_KEY = "rate_limit"


class RateLimiter:
    """The limiter of one API process: tier limits per user and the IP limit."""

    def __init__(self, storage_uri: str = "async+memory://", *, ip_limit: int = IP_LIMIT_PER_MINUTE) -> None:
        options: dict[str, Any] = {}
        if storage_uri.startswith("async+redis"):
            options["implementation"] = "redispy"
        self.storage = storage_from_string(storage_uri, **options)
        self.limiter = MovingWindowRateLimiter(self.storage)
        self.ip_item = RateLimitItemPerMinute(ip_limit)
        self._tier_items: dict[int, RateLimitItem] = {}

    @classmethod
    def from_settings(cls, settings) -> "RateLimiter":
        ip_limit = settings.rate_limit_ip_per_minute
        if settings.redis_url:
            url = settings.redis_url
            return cls(url if url.startswith("async+") else "async+" + url, ip_limit=ip_limit)
        return cls(ip_limit=ip_limit)

    def _item(self, amount: int) -> RateLimitItem:
        item = self._tier_items.get(amount)
        if item is None:
            item = self._tier_items[amount] = RateLimitItemPerMinute(amount)
        return item

    async def hit(self, item: RateLimitItem, *identifiers: str) -> tuple[bool, dict[str, int]] | None:
        """Counts one request; returns (allowed, info) or None when the storage failed."""
        try:
            allowed = await self.limiter.hit(item, *identifiers)
            reset_at, remaining = await self.limiter.get_window_stats(item, *identifiers)
        except Exception as err:  # noqa: BLE001 - a storage outage must not take the API down
            log.warning("rate limit storage unavailable, letting the request through: %s", err)
            return None
        now = time.time()
        # An empty window reports "now" as its start; the next slot frees a full window later.
        reset = math.ceil(reset_at if reset_at > now else now + WINDOW_SECONDS)
        return allowed, {"limit": item.amount, "remaining": max(0, remaining), "reset": reset}

    async def check_user(self, principal: Principal) -> tuple[bool, dict[str, Any]]:
        amount = principal.rate_limit
        if amount is None:
            return True, {"limit": None, "remaining": None, "reset": math.ceil(time.time()) + WINDOW_SECONDS}
        outcome = await self.hit(self._item(amount), "user", principal.user_id)
        if outcome is None:
            return True, {"limit": amount, "remaining": amount, "reset": math.ceil(time.time()) + WINDOW_SECONDS}
        return outcome

    async def check_ip(self, ip: str) -> tuple[bool, dict[str, int]] | None:
        return await self.hit(self.ip_item, "ip", ip)


def limit_headers(info: dict[str, Any]) -> dict[str, str]:
    limit = info.get("limit")
    remaining = info.get("remaining")
    return {
        "X-RateLimit-Limit": str(UNLIMITED_HEADER_VALUE if limit is None else limit),
        "X-RateLimit-Remaining": str(UNLIMITED_HEADER_VALUE if remaining is None else remaining),
        "X-RateLimit-Reset": str(info["reset"]),
    }


def retry_after(info: dict[str, Any]) -> str:
    # The reset is rounded up to whole seconds; never ask for more than one window.
    return str(min(WINDOW_SECONDS, max(1, math.ceil(info["reset"] - time.time()))))


def rate_limited(info: dict[str, Any], who: str) -> Problem:
    return Problem(
        429,
        "rate_limited",
        f"rate limit of {info['limit']} requests per minute exceeded for this {who}; retry after the Retry-After seconds",
        headers={**limit_headers(info), "Retry-After": retry_after(info)},
    )


def _has_bearer(scope: Scope, allow_query_key: bool) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return True
    if allow_query_key and b"api_key=" in scope.get("query_string", b""):
        return True
    return False


def _client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


class RateLimitMiddleware(HTTPMiddleware):
    """Limits unauthenticated calls per IP and writes the X-RateLimit headers of every call."""

    def __init__(self, app: ASGIApp, *, limiter: RateLimiter, allow_query_key: bool) -> None:
        super().__init__(app)
        self.limiter = limiter
        self.allow_query_key = allow_query_key

    def applies(self, scope: Scope) -> bool:
        return scope.get("path") not in EXEMPT_PATHS

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.setdefault("state", {})
        ip = _client_ip(scope)
        credentialed = _has_bearer(scope, self.allow_query_key)
        if not credentialed:
            outcome = await self.limiter.check_ip(ip)
            if outcome is not None:
                allowed, info = outcome
                if not allowed:
                    await _send_refusal(send, scope, rate_limited(info, "client address"))
                    return
                state[STATE_KEY] = info
        swallow = False

        async def _send(message: Message) -> None:
            nonlocal swallow
            if swallow:
                return
            if message["type"] == "http.response.start":
                if credentialed and "principal" not in state:
                    # The token was not accepted (or the route needs none): count it against the IP.
                    outcome = await self.limiter.check_ip(ip)
                    if outcome is not None:
                        allowed, info = outcome
                        if not allowed:
                            swallow = True
                            await _send_refusal(send, scope, rate_limited(info, "client address"))
                            return
                        state[STATE_KEY] = info
                info = state.get(STATE_KEY)
                if info is not None:
                    headers = [(k, v) for k, v in message.get("headers", []) if not k.startswith(b"x-ratelimit-")]
                    headers.extend((k.lower().encode(), v.encode()) for k, v in limit_headers(info).items())
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, _send)


async def _send_refusal(send: Send, scope: Scope, problem: Problem) -> None:
    import json

    if is_oauth_path(scope.get("path", "")):
        payload = oauth_error_body(OAUTH_RATE_LIMITED, problem.detail or problem.title)
        media_type, extra = "application/json", [(b"cache-control", b"no-store")]
    else:
        payload = problem_body(problem.status, problem.code, problem.detail)
        media_type, extra = PROBLEM_JSON, []
    body = json.dumps(payload).encode()
    headers = [(b"content-type", media_type.encode()), (b"content-length", str(len(body)).encode()), *extra]
    headers.extend((k.lower().encode(), v.encode()) for k, v in problem.headers.items())
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def install(app: FastAPI, state: AppState) -> None:
    """Hooks the per-user check into authentication and adds the middleware."""
    limiter = RateLimiter.from_settings(state.settings)
    state.extras["rate_limiter"] = limiter
    previous = state.on_authenticated

    async def on_authenticated(request: Request, principal: Principal) -> None:
        allowed, info = await limiter.check_user(principal)
        request.state.rate_limit = info
        if not allowed:
            raise rate_limited(info, "user")
        if previous is not None:
            await previous(request, principal)

    state.on_authenticated = on_authenticated
    app.add_middleware(RateLimitMiddleware, limiter=limiter, allow_query_key=state.settings.allow_query_api_key)
