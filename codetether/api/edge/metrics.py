"""Prometheus metrics of the API: ``GET /metrics``.

Two kinds of series:

* per process, from a middleware: ``codetether_http_requests_total{method,route,status}`` and
  ``codetether_http_request_duration_seconds{method,route}`` (route = the matched path template,
  so ids never explode the label set);
* per deployment, read from the shared database at scrape time, so every API replica reports the
  same cluster-wide figures: ``codetether_tasks{status}`` (task outcomes and what is in flight),
  ``codetether_tasks_queued`` (queue depth: tasks waiting for a worker or a concurrency slot) and
  ``codetether_webhook_attempts_total{outcome}`` / ``codetether_webhook_deliveries{status}``.

The worker's Temporal SDK metrics are served by the worker itself (see :mod:`codetether.core.telemetry`).
Installed by :func:`install` from ``codetether.api.app.EXTENSIONS``.
"""

from __future__ import annotations

import logging
import time

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import case, func, select
from starlette.types import Message, Receive, Scope, Send

from codetether.api.edge.middleware import HTTPMiddleware
from codetether.api.state import AppState
from codetether.core.logging import redact_paths
from codetether.core.models import Task, WebhookAttempt, WebhookDelivery
from codetether.tasks.contracts import TASK_STATUSES, TERMINAL_STATUSES

log = logging.getLogger(__name__)
access_log = logging.getLogger("codetether.access")

# One registry per process: the app factory runs many times in tests, the series exist once.
REGISTRY = CollectorRegistry(auto_describe=True)
HTTP_REQUESTS = Counter(
    "codetether_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "codetether_http_request_duration_seconds",
    "Time to answer an HTTP request (until the response starts), by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)


class MetricsMiddleware(HTTPMiddleware):
    """Counts and times every HTTP request under its route template."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        status = 500
        observed = False

        def observe() -> None:
            nonlocal observed
            if observed:
                return
            observed = True
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "GET")
            elapsed = time.perf_counter() - start
            HTTP_REQUESTS.labels(method, template, str(status)).inc()
            HTTP_DURATION.labels(method, template).observe(elapsed)
            # The access log: with CODETETHER_LOG_JSON each line carries the request id. Reply and
            # sign-in links are capabilities: their token never reaches the log.
            access_log.info("%s %s %d %.1fms", method, redact_paths(scope.get("path", "")), status, elapsed * 1000)

        async def _send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # Long streams (SSE, ?wait) are timed to their first byte, not to their end.
                observe()
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            observe()


class _Snapshot:
    """A collector over figures read from the database just before this scrape."""

    def __init__(self, tasks: dict[str, int], attempts: dict[str, int], deliveries: dict[str, int]) -> None:
        self.tasks, self.attempts, self.deliveries = tasks, attempts, deliveries

    def collect(self):
        by_status = GaugeMetricFamily("codetether_tasks", "Tasks by status (all users, all replicas).", labels=["status"])
        for status in TASK_STATUSES:
            by_status.add_metric([status], self.tasks.get(status, 0))
        yield by_status
        yield GaugeMetricFamily(
            "codetether_tasks_queued", "Queue depth: tasks waiting for a worker or a concurrency slot.",
            value=self.tasks.get("queued", 0),
        )
        yield GaugeMetricFamily(
            "codetether_tasks_finished", "Tasks in a terminal status.",
            value=sum(v for k, v in self.tasks.items() if k in TERMINAL_STATUSES),
        )
        attempts = CounterMetricFamily(
            "codetether_webhook_attempts", "Webhook delivery attempts by outcome (2xx = success).", labels=["outcome"]
        )
        for outcome in ("success", "failure"):
            attempts.add_metric([outcome], self.attempts.get(outcome, 0))
        yield attempts
        deliveries = GaugeMetricFamily("codetether_webhook_deliveries", "Webhook deliveries by status.", labels=["status"])
        for status, n in sorted(self.deliveries.items()):
            deliveries.add_metric([status], n)
        yield deliveries


async def read_snapshot(state: AppState) -> _Snapshot:
    async with state.db.session() as s:
        tasks = dict((await s.execute(select(Task.status, func.count()).group_by(Task.status))).all())
        ok = case((WebhookAttempt.status_code.between(200, 299), "success"), else_="failure")
        attempts = dict((await s.execute(select(ok, func.count()).group_by(ok))).all())
        deliveries = dict(
            (await s.execute(select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status))).all()
        )
    return _Snapshot(tasks, attempts, deliveries)


def render(snapshot: _Snapshot | None) -> bytes:
    body = generate_latest(REGISTRY)
    if snapshot is not None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(snapshot)
        body += generate_latest(registry)
    return body


def install(app: FastAPI, state: AppState) -> None:
    @app.get(
        "/metrics",
        operation_id="metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}},
    )
    async def metrics() -> Response:
        try:
            snapshot = await read_snapshot(state)
        except Exception as err:  # noqa: BLE001
            # A scrape must still show the process series when the database is down.
            log.warning("metrics: database figures unavailable: %s", err)
            snapshot = None
        return Response(render(snapshot), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(MetricsMiddleware)
