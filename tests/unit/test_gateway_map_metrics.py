"""gateway.map_metrics: the map's and the move's gauges from one map and progress record."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.map_metrics import map_gauges
from shardgate.clustermap import ClusterMap, MapVolume


def samples(registry) -> dict[tuple[str, tuple], float]:  # noqa: ANN001
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def cluster_map(moving: bool) -> ClusterMap:
    volumes = tuple(MapVolume(f"v{i}", f"http://127.0.0.1:{9000 + i}", 1.0, "",
                              "joining" if i == 7 else "active") for i in range(1, 8))
    previous = volumes[:6] if moving else None
    return ClusterMap(epoch=2, erasure={"k": 4, "m": 2}, volumes=volumes,
                      previous=previous)


def test_a_map_at_rest() -> None:
    got = samples(map_gauges(cluster_map(moving=False), None))
    assert got[("shardgate_map_epoch", ())] == 2
    assert got[("shardgate_map_volumes", (("state", "active"),))] == 6
    assert got[("shardgate_map_volumes", (("state", "joining"),))] == 1
    assert got[("shardgate_map_volumes", (("state", "gone"),))] == 0
    assert got[("shardgate_rebalance_moving", ())] == 0
    assert not any(name.startswith("shardgate_rebalance_phase") for name, _ in got)


def test_a_move_in_progress() -> None:
    progress = {"epoch": 2, "phase": "moving", "moved": 120, "scanned": 300,
                "sources": {"v1": {"cursor": 9, "rows": 500, "done": False},
                            "v2": {"cursor": 0, "rows": 700, "done": False}},
                "started": 1.0, "updated": 1700000000.5}
    got = samples(map_gauges(cluster_map(moving=True), progress))
    assert got[("shardgate_rebalance_moving", ())] == 1
    assert got[("shardgate_rebalance_phase", (("phase", "moving"),))] == 1
    assert got[("shardgate_rebalance_phase", (("phase", "waiting"),))] == 0
    assert got[("shardgate_rebalance_versions_moved", ())] == 120
    assert got[("shardgate_rebalance_rows_scanned", ())] == 300
    assert got[("shardgate_rebalance_rows_to_scan", ())] == 1200
    assert got[("shardgate_rebalance_updated_timestamp_seconds", ())] == 1700000000.5
