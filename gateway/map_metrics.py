"""The cluster map and the rebalancer's progress as gauges on every gateway's `/-/metrics`.

The progress of a move lives in the map store (the rebalancer saves it after every page,
so it survives the rebalancer's restart); each scrape reads it there, so any gateway
reports it and a dashboard needs no rebalancer endpoint. Pure: testable alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily

from shardgate.clustermap import ClusterMap

PHASES = ("waiting", "moving", "healing", "done")
STATES = ("joining", "active", "draining", "gone")


class _MapSnapshot:
    def __init__(self, current: ClusterMap, progress: dict[str, Any] | None) -> None:
        self.current, self.progress = current, progress

    def collect(self) -> Iterator[GaugeMetricFamily]:  # prometheus_client's protocol
        current, progress = self.current, self.progress
        yield GaugeMetricFamily("shardgate_map_epoch",
                                "The cluster map epoch this gateway serves.",
                                value=current.epoch)
        states = Counter(v.state for v in current.volumes)
        volumes = GaugeMetricFamily("shardgate_map_volumes",
                                    "Volumes in the cluster map, by state.", labels=["state"])
        for state in STATES:
            volumes.add_metric([state], states.get(state, 0))
        yield volumes
        yield GaugeMetricFamily("shardgate_rebalance_moving",
                                "1 while fragments move to the current epoch's placement.",
                                value=int(current.moving))
        if progress is None:
            return
        phase = GaugeMetricFamily("shardgate_rebalance_phase",
                                  "The current epoch's move: 1 for the phase it is in.",
                                  labels=["phase"])
        for name in PHASES:
            phase.add_metric([name], int(progress["phase"] == name))
        yield phase
        rows = sum(s["rows"] for s in progress.get("sources", {}).values())
        for name, doc, value in (
                ("shardgate_rebalance_versions_moved",
                 "Versions moved to the current epoch's placement so far.", progress["moved"]),
                ("shardgate_rebalance_rows_scanned",
                 "Rows of the leaving volumes walked so far.", progress["scanned"]),
                ("shardgate_rebalance_rows_to_scan",
                 "Rows the leaving volumes held when the walk started.", rows),
                ("shardgate_rebalance_updated_timestamp_seconds",
                 "When the rebalancer last saved its progress (Unix time).",
                 progress["updated"])):
            yield GaugeMetricFamily(name, doc, value=value)


def map_gauges(current: ClusterMap, progress: dict[str, Any] | None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_MapSnapshot(current, progress))
    return registry
