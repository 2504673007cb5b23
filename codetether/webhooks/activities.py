"""Webhook delivery on the worker: the event sink that fans events out, and the activity that
makes one HTTP attempt of a delivery.

Built by ``codetether/worker.py`` (``build_sink`` and ``activity_list``). The attempt activity signs the
stored body (``codetether/webhooks/signing.py``), sends it through the SSRF-guarded client
(``codetether/core/netguard.py``), records a ``webhook_attempts`` row and tells the delivery workflow what
happens next; ``GET /v1/webhooks/{id}/deliveries`` reads those rows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
from sqlalchemy import select
from temporalio import activity
from temporalio.client import Client

from codetether.core.config import Settings
from codetether.core.db import Database
from codetether.core.ids import as_utc, new_id, utcnow
from codetether.core.secretbox import SecretBoxUnavailable
from codetether.core.models import (
    A2APushConfig,
    Task,
    TaskEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from codetether.core.netguard import UnsafeURL, check_url_shape, webhook_http_client
from codetether.webhooks.signing import signed_headers
from codetether.webhooks.routing import (
    FAILING_DISABLE_AFTER,
    USER_AGENT,
    fan_out,
    signing_secrets,
    task_secrets,
)
from codetether.webhooks.contracts import (
    ATTEMPT_DELIVERED,
    ATTEMPT_EXHAUSTED,
    ATTEMPT_GONE,
    ATTEMPT_RETRY,
    ATTEMPT_SKIPPED,
    DELIVERY_CANCELLED,
    DELIVERY_DELIVERED,
    DELIVERY_FAILED,
    DELIVERY_PENDING,
    DeliveryAttemptInput,
    DeliveryAttemptResult,
)

log = logging.getLogger(__name__)

# How much of a receiver's answer the delivery log keeps.
RESPONSE_KEEP_BYTES = 2048
# A Retry-After longer than this is capped (the schedule still ends when attempts run out).
MAX_RETRY_AFTER = 24 * 3600.0
HTTP_GONE = 410
# "Not yet": n8n's resume URL answers 409 until its run reaches the Wait node. Retried on the
# schedule like any failure, but never a sign of a dead receiver.
HTTP_CONFLICT = 409


class WebhookDispatcher:
    """The worker's :class:`codetether.tasks.events.EventSink`: after each recorded event, one delivery per
    matching destination, each a :class:`codetether.webhooks.workflow.DeliveryWorkflow`."""

    def __init__(self, db: Database, client: Client, settings: Settings) -> None:
        self.db = db
        self.client = client
        self.settings = settings

    async def publish(self, event: TaskEvent, task: Task) -> None:
        await fan_out(self.db, self.client, self.settings, event, task)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def a2a_push_headers(push: A2APushConfig) -> dict[str, str]:
    """What an A2A push receiver checks besides the signature: its token and its credentials."""
    out: dict[str, str] = {}
    if push.token:
        out["X-A2A-Notification-Token"] = push.token
    if push.auth_scheme and push.auth_credentials:
        out["Authorization"] = f"{push.auth_scheme} {push.auth_credentials}"
    return out


class _Response:
    def __init__(self) -> None:
        self.status: int | None = None
        self.body: str | None = None
        self.retry_after: str | None = None
        self.error: str | None = None


class WebhookActivities:
    def __init__(self, *, settings: Settings, db: Database, http_client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.db = db
        self._http = http_client

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = webhook_http_client(
                allow_private=self.settings.webhook_allow_private, timeout=self.settings.webhook_timeout_seconds
            )
        return self._http

    async def _send(self, url: str, body: bytes, headers: dict[str, str]) -> _Response:
        out = _Response()
        limit = self.settings.webhook_timeout_seconds
        try:
            async with asyncio.timeout(limit):
                async with self.http.stream("POST", url, content=body, headers=headers) as resp:
                    out.status = resp.status_code
                    out.retry_after = resp.headers.get("retry-after")
                    kept = bytearray()
                    async for chunk in resp.aiter_raw():
                        kept += chunk
                        if len(kept) >= RESPONSE_KEEP_BYTES:
                            break
                    out.body = bytes(kept[:RESPONSE_KEEP_BYTES]).decode("utf-8", "replace")
        except TimeoutError:
            out.status = None
            out.error = f"no response within {limit:g} s"
        except httpx.TimeoutException:
            out.status = None
            out.error = f"no response within {limit:g} s"
        except httpx.HTTPError as err:
            out.status = None
            out.error = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        return out

    @activity.defn
    async def attempt_delivery(self, inp: DeliveryAttemptInput) -> DeliveryAttemptResult:
        # Temporal's clock (the time-skipping test server moves it) for schedule bookkeeping.
        now = as_utc(activity.info().current_attempt_scheduled_time) or utcnow()
        async with self.db.session() as s:
            dlv = await s.get(WebhookDelivery, inp.delivery_id)
            if dlv is None:
                return DeliveryAttemptResult(ATTEMPT_SKIPPED)
            if dlv.status != DELIVERY_PENDING:
                # Already settled (an activity retry after the row was written).
                outcome = {DELIVERY_DELIVERED: ATTEMPT_DELIVERED, DELIVERY_FAILED: ATTEMPT_EXHAUSTED}.get(
                    dlv.status, ATTEMPT_SKIPPED
                )
                return DeliveryAttemptResult(outcome, dlv.last_status_code)
            sub = None
            extra_headers: dict[str, str] = {}
            if dlv.subscription_id is not None:
                sub = await s.get(WebhookSubscription, dlv.subscription_id)
                if sub is None or sub.status != "active":
                    dlv.status = DELIVERY_CANCELLED
                    dlv.next_attempt_at = None
                    dlv.last_error = "the subscription was deleted" if sub is None else "the subscription is disabled"
                    dlv.updated_at = utcnow()
                    await s.commit()
                    return DeliveryAttemptResult(ATTEMPT_SKIPPED)
                url = sub.url
                if sub.header_token_name and sub.header_token_value:
                    extra_headers = {sub.header_token_name: sub.header_token_value}
            else:
                task = await s.get(Task, dlv.task_id) if dlv.task_id else None
                url = dlv.url
            try:
                secrets = signing_secrets(sub, self.settings, utcnow()) if sub is not None \
                    else task_secrets(task, self.settings)
            except SecretBoxUnavailable as err:
                # Sealed with another key: sending it unsigned would be worse than not sending it.
                dlv.status = DELIVERY_CANCELLED
                dlv.next_attempt_at = None
                dlv.last_error = str(err)
                dlv.updated_at = utcnow()
                await s.commit()
                return DeliveryAttemptResult(ATTEMPT_SKIPPED)
            push_headers: dict[str, str] = {}
            if dlv.push_config_id is not None:
                push = await s.get(A2APushConfig, (dlv.task_id, dlv.push_config_id))
                if push is None:
                    dlv.status = DELIVERY_CANCELLED
                    dlv.next_attempt_at = None
                    dlv.last_error = "the push notification config was deleted"
                    dlv.updated_at = utcnow()
                    await s.commit()
                    return DeliveryAttemptResult(ATTEMPT_SKIPPED)
                push_headers = a2a_push_headers(push)
            body = dlv.payload
            if body is None:
                event = await s.get(TaskEvent, dlv.event_id)
                body = event.body if event is not None else None
            event_id, event_type = dlv.event_id, dlv.event_type

        if body is None:
            return await self._settle(inp, now, None, None, "the event no longer exists", ATTEMPT_SKIPPED, None)

        started = time.perf_counter()
        try:
            check_url_shape(url, allow_private=self.settings.webhook_allow_private)
        except UnsafeURL as err:
            resp = _Response()
            resp.error = f"refused: {err}"
        else:
            headers = signed_headers(
                body=body,
                event_id=event_id,
                event_type=event_type,
                delivery_id=inp.delivery_id,
                secrets=secrets,
                user_agent=USER_AGENT,
            )
            headers.update(extra_headers)
            headers.update(push_headers)
            resp = await self._send(url, body.encode("utf-8"), headers)
        duration_ms = round((time.perf_counter() - started) * 1000, 2)

        status = resp.status
        if status is not None and 200 <= status < 300:
            outcome, next_delay = ATTEMPT_DELIVERED, None
        elif status == HTTP_GONE:
            outcome, next_delay = ATTEMPT_GONE, None
        elif inp.planned_delay is None:
            outcome, next_delay = ATTEMPT_EXHAUSTED, None
        else:
            outcome, next_delay = ATTEMPT_RETRY, inp.planned_delay
            asked = parse_retry_after(resp.retry_after, utcnow())
            if asked is not None:
                next_delay = max(next_delay, min(asked, MAX_RETRY_AFTER))
        error = resp.error
        if error is None and status is not None and not 200 <= status < 300:
            error = "redirects are not followed" if 300 <= status < 400 else f"HTTP {status}"
        return await self._settle(inp, now, status, resp.body, error, outcome, next_delay, duration_ms)

    async def _settle(
        self,
        inp: DeliveryAttemptInput,
        now: datetime,
        status: int | None,
        response_body: str | None,
        error: str | None,
        outcome: str,
        next_delay: float | None,
        duration_ms: float | None = None,
    ) -> DeliveryAttemptResult:
        """Writes the attempt row and the delivery's and subscription's new state in one go."""
        next_at = now + timedelta(seconds=next_delay) if next_delay is not None else None
        async with self.db.session() as s:
            dlv = await s.get(WebhookDelivery, inp.delivery_id)
            if dlv is None:
                return DeliveryAttemptResult(ATTEMPT_SKIPPED, status)
            sub = await s.get(WebhookSubscription, dlv.subscription_id) if dlv.subscription_id else None
            if sub is not None and outcome != ATTEMPT_SKIPPED:
                if outcome == ATTEMPT_DELIVERED:
                    sub.failing_since = None
                elif outcome == ATTEMPT_GONE:
                    sub.status = "disabled"
                    sub.disabled_reason = "the receiver answered 410 Gone"
                    sub.updated_at = utcnow()
                elif status == HTTP_CONFLICT:
                    pass  # neither a success nor a failure toward disabling the subscription
                else:
                    since = as_utc(sub.failing_since)
                    if since is None:
                        sub.failing_since = now
                    elif now - since >= FAILING_DISABLE_AFTER and sub.status == "active":
                        # Every delivery has failed for days: stop hammering a dead endpoint.
                        sub.status = "disabled"
                        sub.disabled_reason = f"every delivery failed since {since.isoformat()}"
                        sub.updated_at = utcnow()
                        outcome, next_delay, next_at = ATTEMPT_EXHAUSTED, None, None
            existing = await s.execute(
                select(WebhookAttempt).where(
                    WebhookAttempt.delivery_id == inp.delivery_id, WebhookAttempt.attempt == inp.attempt
                )
            )
            row = existing.scalar_one_or_none()
            if row is None:
                row = WebhookAttempt(id=new_id("att"), delivery_id=inp.delivery_id, attempt=inp.attempt)
                s.add(row)
            row.status_code = status
            row.duration_ms = duration_ms
            row.response_body = response_body
            row.error = error
            row.next_attempt_at = next_at
            row.created_at = utcnow()
            dlv.attempt_count = max(dlv.attempt_count or 0, inp.attempt)
            dlv.last_status_code = status
            dlv.last_error = error
            dlv.next_attempt_at = next_at
            dlv.updated_at = utcnow()
            if sub is not None:
                dlv.url = sub.url
            dlv.status = {
                ATTEMPT_DELIVERED: DELIVERY_DELIVERED,
                ATTEMPT_RETRY: DELIVERY_PENDING,
                ATTEMPT_SKIPPED: DELIVERY_CANCELLED,
            }.get(outcome, DELIVERY_FAILED)
            await s.commit()
        if outcome != ATTEMPT_DELIVERED:
            log.info("delivery %s attempt %d: %s (%s)", inp.delivery_id, inp.attempt, outcome, error)
        return DeliveryAttemptResult(outcome, status, next_delay)
