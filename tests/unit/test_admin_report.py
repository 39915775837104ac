"""shardgate admin: merging the volumes' answers, the at-risk rule, the table and the JSON."""

from __future__ import annotations

import json

from shardgate.admin_report import (
    DOWN,
    ERROR,
    Backlog,
    VolumeReport,
    build_report,
    count_at_risk,
    human_bytes,
    merge_heal_versions,
    render,
    to_json,
)

GIB = 1 << 30


def up(vid: str, heal: int = 0, **changes: int) -> VolumeReport:
    values = {"disk_total": 100 * GIB, "disk_used": 40 * GIB, "disk_free": 60 * GIB,
              "objects": 12, "pending": 0, "retired": 3, "heal_depth": heal,
              "heal_versions": 1 if heal else 0, **changes}
    return VolumeReport(vid, f"http://127.0.0.1:81{vid[1:]}", "up", **values)


def entry(key: str, *indexes: int, version: str = "000v1") -> dict:
    return {"incarnation": "inc1", "key": key, "version_id": version, "entries": 2,
            "indexes": list(indexes)}


def test_versions_are_deduplicated_across_volumes_and_indexes_pooled() -> None:
    merged = merge_heal_versions([[entry("a", 1), entry("b")], [entry("a", 4), entry("b")],
                                  [entry("a", 1, version="000v2")]])
    assert merged == {("inc1", "a", "000v1"): frozenset({1, 4}),
                      ("inc1", "b", "000v1"): frozenset(),
                      ("inc1", "a", "000v2"): frozenset({1})}


def test_at_risk_means_at_most_k_fragments_left() -> None:
    versions = {("i", "one", "v"): frozenset({1}), ("i", "two", "v"): frozenset({1, 2}),
                ("i", "three", "v"): frozenset({0, 1, 5}), ("i", "none", "v"): frozenset()}
    assert count_at_risk(versions, 4, 2) == 2  # two and three: 4 and 3 fragments left
    assert count_at_risk(versions, 4, 3) == 1  # only three: 4 of 7 left
    assert count_at_risk(versions, 4, 1) == 3  # every version missing a fragment


def test_healthy_cluster_renders_and_exits_0() -> None:
    report = build_report([up("v1"), up("v2")], [[], []], 4, 2)
    assert report.healthy and report.exit_code == 0
    text = render(report)
    lines = text.splitlines()
    assert lines[0].split() == ["VOLUME", "STATE", "DISK", "USED", "DISK", "FREE", "ROWS",
                                "PENDING", "HEAL", "RETIRED", "SCRUBBED", "URL"]
    assert lines[1].split()[:4] == ["v1", "up", "40.0", "GiB"]
    assert "never" in lines[1].split()  # no scrub pass has finished yet
    assert "2 volumes (EC 4+2), 2 up, 0 down" in text
    assert "degraded objects: 0 versions" in text
    assert text.endswith("status:           healthy (exit 0)")


def test_down_volume_is_shown_down_and_totals_are_lower_bounds() -> None:
    down = VolumeReport("v2", "http://127.0.0.1:8102", DOWN, "connection refused")
    report = build_report([up("v1", heal=3), down, up("v3", heal=2)],
                          [[entry("a", 1)], [entry("a", 2), entry("b", 5)]], 4, 2)
    assert report.exit_code == 1 and not report.complete
    assert report.heal_backlog == 5 and report.degraded == 2 and report.at_risk == 1
    text = render(report)
    row = next(line for line in text.splitlines() if line.startswith("v2"))
    assert row.split()[:8] == ["v2", "DOWN", "-", "-", "-", "-", "-", "-"]
    assert "(connection refused)" in row
    assert "heal backlog:     5 entries on the volumes that answered; unknown on v2" in text
    assert "degraded objects: >= 2 versions with heal entries (v2 did not answer)" in text
    assert "NOT healthy: 1 volume not answering, heal backlog 5 (exit 1)" in text


def test_backlog_alone_is_unhealthy() -> None:
    report = build_report([up("v1", heal=1)], [[entry("a", 0)]], 4, 2)
    assert report.complete and not report.healthy and report.exit_code == 1
    assert render(report).endswith("NOT healthy: heal backlog 1 (exit 1)")


def test_json_has_nulls_for_unknowns_never_zeros() -> None:
    bad = VolumeReport("v2", "http://x", ERROR, "answered 401: invalid token")
    out = to_json(build_report([up("v1"), bad], [[]], 4, 2, lists_truncated=True))
    json.dumps(out)  # serialisable as is
    assert out["healthy"] is False and out["exit_code"] == 1
    cluster = out["cluster"]
    assert cluster["volumes_down"] == ["v2"] and cluster["volumes_up"] == 1
    assert cluster["heal_backlog_complete"] is False
    assert cluster["degraded_objects_exact"] is False
    v1, v2 = out["volumes"]
    assert v1["disk"] == {"total": 100 * GIB, "used": 40 * GIB, "free": 60 * GIB}
    assert v1["objects"] == 12 and v1["retired"] == 3 and v1["heal_backlog"] == 0
    assert v2["state"] == "error" and v2["reason"] == "answered 401: invalid token"
    assert v2["disk"] is None and v2["objects"] is None and v2["heal_backlog"] is None


def test_human_bytes() -> None:
    assert human_bytes(None) == "-"
    assert human_bytes(0) == "0 B"
    assert human_bytes(1023) == "1023 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(3 * GIB) == "3.0 GiB"
    assert human_bytes(5 << 50) == "5.0 PiB"


def test_backlog_is_done_only_when_every_volume_answered_zero() -> None:
    assert Backlog({"v1": 0, "v2": 0}).done
    assert not Backlog({"v1": 0, "v2": 1}).done
    silent = Backlog({"v1": 0, "v2": None})
    assert not silent.done and silent.total == 0
    assert silent.describe() == "heal backlog 0 (unknown on v2: not answering)"
