"""Process telemetry for Temporal clients and workers: the SDK's Prometheus metrics, OpenTelemetry
tracing, and the task id in every log line an activity writes.

``codetether worker`` calls :func:`worker_runtime` (a Temporal ``Runtime`` exporting SDK metrics on
``CODETETHER_WORKER_METRICS_HOST:CODETETHER_WORKER_METRICS_PORT``); :func:`client_interceptors` is
used by :func:`codetether.core.temporal.connect` so API and worker trace through the same interceptor when
``CODETETHER_OTEL_ENABLED=true``.
"""

from __future__ import annotations

import logging
from typing import Any

from temporalio import activity
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from codetether.core.config import Settings
from codetether.core.logging import task_id_var

log = logging.getLogger(__name__)


def worker_runtime(settings: Settings) -> Runtime | None:
    """A Runtime that serves the SDK's metrics for Prometheus, or None when no port is set."""
    if settings.worker_metrics_port is None:
        return None
    bind = f"{settings.worker_metrics_host}:{settings.worker_metrics_port}"
    runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind)))
    log.info("Temporal SDK metrics on http://%s/metrics", bind)
    return runtime


def client_interceptors(settings: Settings) -> list[Any]:
    """Interceptors for every Temporal client (and so for the worker built on it)."""
    if not settings.otel_enabled:
        return []
    try:
        from temporalio.contrib.opentelemetry import TracingInterceptor
    except ImportError:
        # Tracing is optional: say so instead of failing the process.
        log.warning("CODETETHER_OTEL_ENABLED is set but opentelemetry-sdk is not installed; tracing is off")
        return []
    return [TracingInterceptor()]


class LogContextInterceptor(Interceptor):
    """Puts the task id (the workflow id of every CodeTether activity) into the logging context."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityLogContext(next)


class _ActivityLogContext(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        token = task_id_var.set(info.workflow_id)
        try:
            # A first attempt is routine (debug); a retry is worth a line at info.
            log.log(logging.INFO if info.attempt > 1 else logging.DEBUG, "activity %s attempt %d", info.activity_type, info.attempt)
            return await self.next.execute_activity(input)
        finally:
            task_id_var.reset(token)
