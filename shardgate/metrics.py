"""Prometheus metrics shared by every role: request counters, the ASGI middleware, exposition.

Names follow Prometheus conventions: prefix `shardgate_`, base units (seconds, bytes),
`_total` on counters, and no bucket or key labels (unbounded cardinality). A gateway run
with several Hypercorn workers keeps its counters in PROMETHEUS_MULTIPROC_DIR (files
shared by the workers, summed at scrape time); prometheus_client decides that when it is
first imported, so the directory must be in the environment before the process starts
(shardgate/metrics_dir.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

from shardgate.collector import record_pauses
from shardgate.metrics_dir import MULTIPROC_ENV

CONTENT_TYPE = CONTENT_TYPE_LATEST

# The `_created` series double every counter for little use (and multiprocess mode has none).
disable_created_metrics()

# Object transfers can take minutes, so the buckets go past Prometheus' default 10 s.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    60.0, 120.0, 300.0, float("inf"))

REQUESTS = Counter("shardgate_requests_total", "Requests answered, by operation and status.",
                   ["operation", "status"])
DURATION = Histogram("shardgate_request_duration_seconds",
                     "Time from a request's arrival until its answer was sent.",
                     ["operation"], buckets=DURATION_BUCKETS)
REQUEST_BYTES = Counter("shardgate_request_bytes_total",
                        "Request body bytes received, as the ASGI layer sees them.",
                        ["operation"])
RESPONSE_BYTES = Counter("shardgate_response_bytes_total",
                         "Response body bytes sent, as the ASGI layer sees them.",
                         ["operation"])

OPERATION_KEY = "shardgate.operation"  # where a handler records the operation in the scope
UNKNOWN = "Unknown"
NO_STATUS = "none"  # the app returned without starting an answer (client went away)

Scope = dict[str, Any]
ASGIApp = Callable[..., Any]


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def exposition(extra: CollectorRegistry | None = None) -> bytes:
    """This process's metrics in the Prometheus text format (every worker's, summed, in
    multiprocess mode), followed by `extra` (gauges read at scrape time)."""
    record_pauses()
    if multiprocess_dir():
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    if extra is not None:
        text += generate_latest(extra)
    return text


def set_operation(scope: Scope, operation: str) -> None:
    """Called by a handler once it knows the operation; the middleware labels with it."""
    scope[OPERATION_KEY] = operation


class RequestMetrics:
    """ASGI middleware: counts every HTTP request, its status, duration and body bytes.

    `operation_of(scope)` names the operation when no handler has (an answer given before
    routing, such as SlowDown or 401); it is asked at most once per request."""

    def __init__(self, app: ASGIApp, operation_of: Callable[[Scope], str]) -> None:
        self.app = app
        self.operation_of = operation_of

    def _operation(self, scope: Scope) -> str:
        operation = scope.get(OPERATION_KEY)
        if operation is None:
            try:
                operation = self.operation_of(scope)
            except Exception:  # noqa: BLE001 - a label must never fail a request
                operation = UNKNOWN
            scope[OPERATION_KEY] = operation
        return operation

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = NO_STATUS

        async def counting_receive() -> dict:
            message = await receive()
            if message["type"] == "http.request" and message.get("body"):
                REQUEST_BYTES.labels(self._operation(scope)).inc(len(message["body"]))
            return message

        async def counting_send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = str(message["status"])
            elif message["type"] == "http.response.body" and message.get("body"):
                RESPONSE_BYTES.labels(self._operation(scope)).inc(len(message["body"]))
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        except Exception:
            if status == NO_STATUS:
                status = "500"  # what the server answers for an exception that escapes
            raise
        finally:
            operation = self._operation(scope)
            REQUESTS.labels(operation, status).inc()
            DURATION.labels(operation).observe(time.perf_counter() - start)
            record_pauses()
