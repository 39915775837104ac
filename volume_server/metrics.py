"""The volume's Prometheus metrics: `GET /metrics` (no token) and the gauges read at scrape time.

`/metrics` is answered before the JWT check: Prometheus cannot mint the short-lived
tokens the volume API wants, and nothing here names a bucket or a key
(docs/decisions.md). Gauges come from the same COUNT queries as `GET /status`; requests
are counted with the operation named by the matched route, e.g. `PUT /stage/{stage_id}`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from starlette.responses import Response

from shardgate import metrics
from shardgate.metrics import ASGIApp, RequestMetrics, Scope, set_operation
from volume_server.store import Store

log = logging.getLogger("shardgate.volume.metrics")

METRICS_PATH = "/metrics"
UNROUTED = "unrouted"  # refused before routing (a bad token), or no route matched

# name, help, where the value is in a `GET /status`-shaped snapshot
GAUGES: tuple[tuple[str, str, Callable[[dict[str, Any]], int]], ...] = (
    ("shardgate_heal_queue_depth", "Heal entries queued on this volume.",
     lambda s: s["heal_depth"]),
    ("shardgate_heal_queue_versions", "Distinct object versions with heal entries here.",
     lambda s: s["heal_versions"]),
    ("shardgate_object_rows", "Object rows in this volume's index (all versions).",
     lambda s: s["objects"]),
    ("shardgate_pending_rows", "Object rows still waiting for their durable notice.",
     lambda s: s["pending"]),
    ("shardgate_retired_archives", "Archives of superseded versions kept for the grace "
     "period.", lambda s: s["retired"]),
    ("shardgate_disk_total_bytes", "Size of the file system holding the data directory.",
     lambda s: s["disk"]["total"]),
    ("shardgate_disk_used_bytes", "Bytes used on the file system holding the data directory.",
     lambda s: s["disk"]["used"]),
    ("shardgate_disk_free_bytes", "Bytes free (for unprivileged writers) on that file system.",
     lambda s: s["disk"]["free"]),
)


class _Snapshot:
    """A collector that reports one snapshot taken just before the scrape."""

    def __init__(self, volume_id: str, snapshot: dict[str, Any]) -> None:
        self.volume_id = volume_id
        self.snapshot = snapshot

    def collect(self):  # noqa: ANN201 - prometheus_client's collector protocol
        for name, doc, value in GAUGES:
            family = GaugeMetricFamily(name, doc, labels=["volume"])
            family.add_metric([self.volume_id], value(self.snapshot))
            yield family


def gauges(volume_id: str, snapshot: dict[str, Any]) -> CollectorRegistry:
    """A registry holding the volume's gauges for one snapshot (pure: testable alone)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(volume_id, snapshot))
    return registry


def route_operation(scope: Scope) -> str:
    """`METHOD /route/{template}` of the matched route: bounded, names no archive or key."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return f"{scope.get('method', '')} {path}" if path else UNROUTED


class VolumeMetrics:
    """Outermost middleware of the volume app: counts every request and answers
    `GET /metrics` itself, ahead of the token check."""

    def __init__(self, app: ASGIApp, store: Store, volume_id: str) -> None:
        self.app = app
        self.store = store
        self.volume_id = volume_id
        self.counted = RequestMetrics(self._dispatch, route_operation)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        await self.counted(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path") == METRICS_PATH \
                and scope.get("method") in ("GET", "HEAD"):
            set_operation(scope, f"GET {METRICS_PATH}")
            response = Response(await self.render(), media_type=metrics.CONTENT_TYPE)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def render(self) -> bytes:
        """Request counters, then the gauges; without the gauges while the index is not
        open (starting or stopping), rather than failing the scrape."""
        try:
            snapshot = {**await self.store.status_counts(),
                        "disk": await self.store.disk_usage()}
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail the volume
            log.warning("metrics: volume status unavailable: %r", exc)
            return metrics.exposition()
        return metrics.exposition(gauges(self.volume_id, snapshot))
