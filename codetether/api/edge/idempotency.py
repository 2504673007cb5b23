"""``Idempotency-Key`` on every authenticated POST (Stripe's semantics, the IETF httpapi draft).

* The key is scoped to the caller: the user and the integration it came through (the API key, or
  the OAuth client, whose tokens change at every refresh), so two users (or two integrations of
  one user) never collide, and a platform's retry after a token refresh still finds its key. POSTs without a bearer
  principal (``/oauth/token``, ``/oauth/revoke``, ``/oauth/introspect``, the sign-in form) ignore
  the header; they carry their own replay protection.
* A key is 1..255 printable ASCII characters, else ``400 invalid_idempotency_key``. It is kept
  24 hours (``expires_at``) with a fingerprint of the request (method, path, SHA-256 of the body).
* The first request with a key claims it (an insert under a unique constraint, so exactly one of
  many concurrent requests wins) and runs; its response (status, body, headers such as
  ``Location``) is stored. The same key and the same request again replay that response with
  ``Idempotent-Replayed: true``. The same key with another request: ``422
  idempotency_key_reused``. While the first is still running: ``409 idempotency_key_in_use``.
* Nothing is stored for responses that did not execute the endpoint or that failed on our side:
  5xx, 401/403, 429 and request validation errors give the key back, so a retry runs afresh.
* A route that creates something calls ``request.state.reserved_resource_id("task")``: the id is
  reserved in the key's row (when the key is claimed, at no extra cost) before the resource exists, so a retry after a crash (the lock
  expires after ``codetether.core.idempotency.LOCK_TIMEOUT``) creates the same task id, and
  ``codetether.tasks.launch.create_task`` starts its workflow with USE_EXISTING instead of making a
  second task.
* ``POST /v1/automation/tasks`` (marked :func:`claims_in_route`) goes further: the key is claimed
  in the transaction that inserts the task row (:func:`codetether.tasks.launch.create_task_keyed`), and
  no response is stored; a retry finds the row, makes sure its workflow runs and answers with
  the task as created. So a keyed create costs one transaction, as an unkeyed one does, and a
  request that dies before the commit leaves nothing behind. Concurrent requests with the key
  never see it in flight there: they wait for that transaction, then replay.

* Secrets are never stored: a route whose response carries one (a new API key, client secret or
  webhook secret) calls :func:`shown_once`, which marks the response ``Cache-Control: no-store``
  and names the fields to redact. The stored copy has them replaced (``null`` or a masked form)
  plus a ``notice`` saying the secret was shown once, in the first response; a replay returns that.

Installed by :func:`install` from ``codetether.api.app.EXTENSIONS``: a middleware that validates the header
and records the response (``idempotency_middleware.py``), and an ``on_authenticated`` hook (here)
that claims the key once the caller is known.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import timedelta

from fastapi import FastAPI, Request
from fastapi.responses import Response

from codetether.api.auth import Principal
from codetether.core import idempotency as store
from codetether.api.edge.errors import Problem
from codetether.api.edge.idempotency_middleware import (
    IN_USE_DETAIL,
    REPLAYED_HEADER,
    SECRETS_KEY,
    STATE_KEY,
    IdempotencyContext,
    IdempotencyMiddleware,
    redact_body,
    reused_detail,
)
from codetether.api.state import AppState
from codetether.tasks.launch import IdempotentKey

log = logging.getLogger(__name__)

IN_ROUTE_ATTR = "__idempotency_claimed_in_route__"


def claims_in_route(endpoint):
    """Marks an endpoint that claims its Idempotency-Key itself, in the transaction that stores
    what it creates (``POST /v1/automation/tasks``: :func:`codetether.tasks.launch.create_task_keyed`).

    For such a route the key is not claimed on authentication: the request's key, scope and
    fingerprint wait in ``request.state.idempotent_key`` (an :class:`IdempotencyContext`), the
    route passes them on and sets ``used``. If the route answers without having used them (a
    refusal such as ``422 unknown_model``), the middleware claims the key then and stores that
    answer as usual, or answers as the key's earlier use says (replay, reuse, in flight).
    """
    setattr(endpoint, IN_ROUTE_ATTR, True)
    return endpoint


STREAMS_BODY_ATTR = "__idempotency_streams_body__"


def streams_body(endpoint):
    """Marks an endpoint that streams its request body (a file upload): its Idempotency-Key is
    fingerprinted by method, path, content type and length instead of the body, which is never
    read into memory. A retry with the key replays the first answer; a different file of
    another size (or type) with the same key is ``422 idempotency_key_reused``."""
    setattr(endpoint, STREAMS_BODY_ATTR, True)
    return endpoint


def refuse(claim: store.Claim) -> None:
    """Raises what a claim that is not ours means for the caller: a replay, or a problem."""
    if claim.outcome is store.Outcome.REPLAY:
        assert claim.response is not None
        raise IdempotentReplay(claim.response)
    if claim.outcome is store.Outcome.MISMATCH:
        raise Problem(422, "idempotency_key_reused", reused_detail(claim))
    raise Problem(409, "idempotency_key_in_use", IN_USE_DETAIL, headers={"Retry-After": "1"})


def shown_once(request: Request, response: Response, redacted: dict[str, object]) -> None:
    """Marks a response that carries a secret: never cached, and stored for replays without it.

    ``redacted`` maps each top-level JSON field holding a secret to what a replay shows instead.
    """
    response.headers["Cache-Control"] = "no-store"
    request.scope.setdefault("state", {})[SECRETS_KEY] = dict(redacted)


class IdempotentReplay(Exception):
    def __init__(self, stored: store.StoredResponse) -> None:
        super().__init__("idempotent replay")
        self.stored = stored


def caller_scope(principal: Principal) -> str:
    """The user and the integration the call came through.

    An API key is its own integration. An OAuth access token is not: it is replaced at every
    refresh, and a platform retrying after a refresh must still find its key, so OAuth (and OIDC)
    calls are scoped by the client they were issued to.
    """
    if principal.auth_method == "api_key":
        integration = f"key:{principal.credential_id}"
    else:
        integration = f"{principal.auth_method}:{principal.client_id or '-'}"
    scope = f"{principal.user_id}:{integration}"
    if len(scope) > 100:
        scope = f"{principal.user_id}:{hashlib.sha256(integration.encode()).hexdigest()[:40]}"
    return scope


# Expired keys are replaced when reused; this sweep keeps the table from growing with keys that
# never come back: every PURGE_EVERY-th claim of a process deletes rows past their 24 h.
PURGE_EVERY = 500
_purges: set[asyncio.Task] = set()


def _maybe_purge(state: AppState) -> None:
    count = state.extras["idempotency_claims"] = state.extras.get("idempotency_claims", 0) + 1
    if count % PURGE_EVERY:
        return

    async def _purge() -> None:
        try:
            await store.purge_expired(state.db)
        except Exception:  # noqa: BLE001 - the next sweep tries again
            log.exception("purging expired idempotency keys failed")

    task = asyncio.create_task(_purge())
    _purges.add(task)
    task.add_done_callback(_purges.discard)


async def _claim(state: AppState, request: Request, principal: Principal) -> None:
    ctx: IdempotencyContext | None = request.scope.get("state", {}).get(STATE_KEY)
    if ctx is None or ctx.record_id is not None:
        return
    if getattr(request.scope.get("endpoint"), STREAMS_BODY_ATTR, False):
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = f"{ctype}\n{request.headers.get('content-length', '')}".encode()
    else:
        body = await request.body()
    path = request.url.path
    if request.url.query:
        path = f"{path}?{request.url.query}"
    fp = store.fingerprint(request.method, path, body)
    lock_timeout = timedelta(seconds=state.settings.idempotency_lock_seconds)
    if getattr(request.scope.get("endpoint"), IN_ROUTE_ATTR, False):
        # The route claims the key in the transaction that stores what it creates.
        ctx.deferred = IdempotentKey(caller_scope(principal), ctx.key, request.method, path, fp, lock_timeout)
        request.state.idempotent_key = ctx
        _maybe_purge(state)
        return
    claim = await store.claim(
        state.db, caller_scope(principal), ctx.key, request.method, path, fp, lock_timeout=lock_timeout
    )
    if claim.outcome is store.Outcome.PROCEED:
        _maybe_purge(state)
        ctx.record_id = claim.record_id
        ctx.resource_seed = claim.resource_seed
        ctx.resource_reserved = claim.taken_over
        request.state.reserved_resource_id = ctx.reserved_resource_id
        return
    refuse(claim)


async def _replay(_request: Request, exc: IdempotentReplay) -> Response:
    headers = {k: v for k, v in exc.stored.headers.items() if k != "content-type"}
    headers[REPLAYED_HEADER] = "true"
    return Response(
        content=exc.stored.body,
        status_code=exc.stored.status,
        headers=headers,
        media_type=exc.stored.headers.get("content-type"),
    )


def install(app: FastAPI, state: AppState) -> None:
    previous = state.on_authenticated

    async def on_authenticated(request: Request, principal: Principal) -> None:
        # Earlier hooks first: a rate-limited call must not claim the key.
        if previous is not None:
            await previous(request, principal)
        await _claim(state, request, principal)

    state.on_authenticated = on_authenticated
    app.add_exception_handler(IdempotentReplay, _replay)
    app.add_middleware(IdempotencyMiddleware, state=state)


__all__ = [
    "REPLAYED_HEADER", "IdempotencyContext", "IdempotentReplay", "caller_scope", "claims_in_route", "install",
    "redact_body", "refuse", "shown_once", "streams_body",
]
