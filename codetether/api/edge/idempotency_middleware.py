"""The Idempotency-Key middleware (the rules are in ``idempotency.py``, which installs it).

It validates the header of every POST (``400 invalid_idempotency_key``), puts an
:class:`IdempotencyContext` in the request state for the claim made once the caller is known, and
when the response is complete stores it under the claimed key (secrets redacted) or gives the key
back (5xx, 401/403, 429, invalid requests, or a request that died). For a route that claims its key
itself (``claims_in_route``) but answered without doing so, it claims the key late and answers as
the key's earlier use says.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from codetether.core import idempotency as store
from codetether.api.edge.errors import PROBLEM_JSON, problem_body
from codetether.api.edge.middleware import HTTPMiddleware, request_header
from codetether.api.state import AppState
from codetether.tasks.launch import IdempotentKey

log = logging.getLogger("codetether.api.edge.idempotency")

HEADER = b"idempotency-key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY_RE = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$")
STATE_KEY = "idempotency"
SECRETS_KEY = "idempotency_secret_fields"
SHOWN_ONCE_NOTICE = (
    "This is a replay of an earlier request with the same Idempotency-Key. The secret was shown once, "
    "in the first response, and is not stored; if it was lost, revoke this credential and create a new one."
)
# Response headers that describe this delivery rather than the result; never replayed.
NOT_REPLAYED = frozenset(
    {"x-request-id", "date", "server", "content-length", "transfer-encoding", "connection", "set-cookie", "retry-after"}
)
# Answers that did not execute the endpoint: the key is given back rather than stored.
NOT_STORED = frozenset({401, 403, 429})
IN_USE_DETAIL = "a request with this Idempotency-Key is still being processed; retry after it has finished"


class IdempotencyContext:
    def __init__(self, key: str) -> None:
        self.key = key
        self.record_id: int | None = None
        self.resource_seed: str | None = None
        self.resource_reserved = False
        # Set for a route that claims the key itself (:func:`claims_in_route`); ``used`` once it did.
        self.deferred: IdempotentKey | None = None
        self.used = False

    async def reserved_resource_id(self, prefix: str) -> str:
        """What routes call as ``request.state.reserved_resource_id(prefix)``."""
        assert self.resource_seed is not None
        self.resource_reserved = True
        return store.resource_id(self.resource_seed, prefix)


def reused_detail(claim: store.Claim) -> str:
    return (
        f"this Idempotency-Key was already used for a different request ({claim.first_method} {claim.first_path} "
        "with another body); use a new key for a new request"
    )


def redact_body(body: bytes, redacted: dict[str, object]) -> bytes:
    try:
        doc = json.loads(body)
    except ValueError:
        return body
    if not isinstance(doc, dict):
        return body
    for name, replacement in redacted.items():
        if name in doc:
            doc[name] = replacement
    doc["notice"] = SHOWN_ONCE_NOTICE
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _problem_message(status: int, code: str, detail: str) -> tuple[Message, Message]:
    body = json.dumps(problem_body(status, code, detail)).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())],
    }
    return start, {"type": "http.response.body", "body": body}


class IdempotencyMiddleware(HTTPMiddleware):
    """Validates the header, and stores (or gives back) the key when the response is complete."""

    def __init__(self, app: ASGIApp, *, state: AppState) -> None:
        super().__init__(app)
        self.state = state

    def applies(self, scope: Scope) -> bool:
        return scope.get("method") == "POST"

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = request_header(scope, HEADER)
        if raw is None:
            await self.app(scope, receive, send)
            return
        key = raw.decode("latin-1")
        if len(key) > store.MAX_KEY_LENGTH or not _KEY_RE.match(key):
            start, body = _problem_message(
                400,
                "invalid_idempotency_key",
                f"Idempotency-Key must be 1 to {store.MAX_KEY_LENGTH} printable ASCII characters",
            )
            await send(start)
            await send(body)
            return
        ctx = IdempotencyContext(key)
        scope.setdefault("state", {})[STATE_KEY] = ctx
        held: Message | None = None
        chunks: list[bytes] = []
        finished = False

        async def _send(message: Message) -> None:
            nonlocal held, finished
            if ctx.record_id is None and ctx.deferred is not None and not ctx.used:
                # A route that claims its key itself answered without doing so: claim it now.
                if message["type"] == "http.response.start":
                    if not self._storable(scope, message["status"]):
                        ctx.used = True  # nothing to claim: the key stays free
                        await send(message)
                        return
                    held = message
                    return
                if message["type"] == "http.response.body" and held is not None:
                    chunks.append(message.get("body", b""))
                    if message.get("more_body", False):
                        return
                    ctx.used = True
                    body = b"".join(chunks)
                    late = await self._late_claim(ctx)
                    if late is not None:
                        finished = True
                        await send(late[0])
                        await send(late[1])
                        return
                    if ctx.record_id is not None:
                        await self._finish(scope, ctx, held, body)
                    finished = True
                    await send(held)
                    await send({"type": "http.response.body", "body": body})
                    return
            if ctx.record_id is None:
                await send(message)
                return
            if message["type"] == "http.response.start":
                held = message
                return
            if message["type"] == "http.response.body" and held is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                await self._finish(scope, ctx, held, b"".join(chunks))
                finished = True
                await send(held)
                await send({"type": "http.response.body", "body": b"".join(chunks)})
                return
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            if ctx.record_id is not None and not finished:
                # The request died before answering (an error escaped, or the client left).
                await asyncio.shield(self._release(ctx))

    @staticmethod
    def _storable(scope: Scope, status: int) -> bool:
        return not (status >= 500 or status in NOT_STORED or scope.get("state", {}).get("request_invalid"))

    async def _late_claim(self, ctx: IdempotencyContext) -> tuple[Message, Message] | None:
        """Claims a deferred key after its route answered; None when this request now holds it,
        else the answer the key's earlier use calls for instead of the route's."""
        key = ctx.deferred
        assert key is not None
        claim = await store.claim(
            self.state.db, key.scope, key.key, key.method, key.path, key.fingerprint, lock_timeout=key.lock_timeout
        )
        if claim.outcome is store.Outcome.PROCEED:
            ctx.record_id = claim.record_id
            ctx.resource_seed = claim.resource_seed
            ctx.resource_reserved = claim.taken_over
            return None
        if claim.outcome is store.Outcome.CREATED:
            # An earlier request with the same body created its task; this one was refused before
            # creating anything (the catalog changed, say): its own answer, not stored.
            return None
        if claim.outcome is store.Outcome.REPLAY:
            assert claim.response is not None
            headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in claim.response.headers.items()]
            headers.append((REPLAYED_HEADER.lower().encode(), b"true"))
            headers.append((b"content-length", str(len(claim.response.body)).encode()))
            start = {"type": "http.response.start", "status": claim.response.status, "headers": headers}
            return start, {"type": "http.response.body", "body": claim.response.body}
        if claim.outcome is store.Outcome.MISMATCH:
            return _problem_message(422, "idempotency_key_reused", reused_detail(claim))
        start, body = _problem_message(409, "idempotency_key_in_use", IN_USE_DETAIL)
        start["headers"].append((b"retry-after", b"1"))
        return start, body

    async def _finish(self, scope: Scope, ctx: IdempotencyContext, start: Message, body: bytes) -> None:
        status = start["status"]
        record_id = ctx.record_id
        assert record_id is not None
        if not self._storable(scope, status):
            await self._release(ctx)
            return
        headers = store.header_subset(start.get("headers", []), NOT_REPLAYED)
        redacted = scope.get("state", {}).get(SECRETS_KEY)
        if redacted:
            body = redact_body(body, redacted)
            headers.pop("content-length", None)
        try:
            await store.complete(self.state.db, record_id, store.StoredResponse(status, body, headers))
        except Exception:  # noqa: BLE001 - the response is still right; the key expires with its lock
            log.exception("storing the idempotent response failed")

    async def _release(self, ctx: IdempotencyContext) -> None:
        assert ctx.record_id is not None
        try:
            await store.release(self.state.db, ctx.record_id, resource_reserved=ctx.resource_reserved)
        except Exception:  # noqa: BLE001 - the lock expires on its own
            log.exception("releasing an idempotency key failed")
