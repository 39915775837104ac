"""The gateway's Prometheus metrics: `/-/metrics`, operation labels, healing and checksum counts.

Requests are counted once, by the outermost ASGI middleware, labelled with the S3
operation (`endpoint.operation`) that `GatewayApp.handle` records in the scope. An answer
given before the handler ran (SlowDown, a body idle timeout) is labelled by routing the
request here, so it still counts under its operation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter
from starlette.responses import Response

from gateway.auth.canonical import headers_from_asgi
from gateway.router import route
from shardgate import metrics
from shardgate.metrics import ASGIApp, RequestMetrics, Scope

METRICS_PATH = "/-/metrics"  # '-' cannot start a bucket name, so this never shadows one

HEALED_FRAGMENTS = Counter("shardgate_healed_fragments_total",
                           "Fragment archives this gateway's healer rebuilt and installed.")
CHECKSUM_FAILURES = Counter("shardgate_checksum_failures_total",
                            "Fragments that failed their CRC32C on a read (each is queued "
                            "for heal).")


def operation_of(service_paths: Mapping[str, str]) -> Callable[[Scope], str]:
    """How to name the operation of a request the handler never saw: the gateway's own
    paths by their fixed names, anything else as the router would name it."""

    def name(scope: Scope) -> str:
        path = scope.get("path", "")
        if path in service_paths:
            return service_paths[path]
        raw_path = scope.get("raw_path", b"").decode("latin-1") or path
        raw_query = scope.get("query_string", b"").decode("latin-1")
        headers = headers_from_asgi(scope.get("headers", ()))
        return route(scope.get("method", "GET"), raw_path, raw_query,
                     headers.get("host", ""), "", headers).operation

    return name


def instrument(app: ASGIApp, service_paths: Mapping[str, str]) -> RequestMetrics:
    return RequestMetrics(app, operation_of(service_paths))


async def serve_metrics(extra: CollectorRegistry | None = None) -> Response:
    """GET /-/metrics: no SigV4 (Prometheus cannot sign), and nothing in it names a bucket
    or a key; `extra` holds gauges read for this scrape. Reading the multiprocess files is
    disk I/O, so it runs off the event loop."""
    body = await asyncio.to_thread(metrics.exposition, extra)
    return Response(body, media_type=metrics.CONTENT_TYPE)
