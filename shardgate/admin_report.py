"""What `shardgate admin` reports, from the volumes' answers: pure, so it is tested alone.

Nothing here is guessed: a volume that did not answer is down and its numbers are
unknown, so every cluster total says whether it covers every volume.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

UP, DOWN, ERROR = "up", "down", "error"

EXIT_HEALTHY = 0  # every volume answered and no heal entry is queued
EXIT_UNHEALTHY = 1  # a volume is down or answered wrongly, or the backlog is not 0


@dataclass(frozen=True)
class VolumeReport:
    """One volume's `GET /status`, or why there is none."""

    id: str
    url: str
    state: str  # UP; DOWN: no answer (refused, timed out); ERROR: answered, but not 200
    reason: str = ""
    data_dir: str = ""
    disk_total: int | None = None
    disk_used: int | None = None
    disk_free: int | None = None
    objects: int | None = None
    pending: int | None = None
    retired: int | None = None
    heal_depth: int | None = None
    heal_versions: int | None = None
    last_scrub: float | None = None  # when the last full scrub pass finished (epoch s)
    scrub_problems: int | None = None  # missing + corrupt archives it found

    @classmethod
    def from_status(cls, volume_id: str, url: str, body: Mapping[str, Any]) -> VolumeReport:
        disk, heal = body["disk"], body["heal"]
        return cls(volume_id, url, UP, data_dir=body.get("data_dir", ""),
                   disk_total=disk["total"], disk_used=disk["used"], disk_free=disk["free"],
                   objects=body["objects"], pending=body["pending"], retired=body["retired"],
                   heal_depth=heal["depth"], heal_versions=heal["versions"],
                   last_scrub=(body.get("last_scrub") or {}).get("finished"),
                   scrub_problems=_scrub_problems(body.get("last_scrub")))

    @property
    def up(self) -> bool:
        return self.state == UP


VersionId = tuple[str, str, str]  # (incarnation, key, version_id)


def merge_heal_versions(lists: Iterable[Iterable[Mapping[str, Any]]]
                        ) -> dict[VersionId, frozenset[int]]:
    """Distinct versions with heal entries across volumes, each with the union of the
    fragment indexes its entries name (the same version is queued on several volumes)."""
    merged: dict[VersionId, set[int]] = {}
    for versions in lists:
        for v in versions:
            merged.setdefault((v["incarnation"], v["key"], v["version_id"]), set()).update(
                v.get("indexes") or ())
    return {ref: frozenset(indexes) for ref, indexes in merged.items()}


def count_at_risk(versions: Mapping[VersionId, frozenset[int]], k: int, m: int) -> int:
    """Versions whose heal entries name so many missing fragment indexes that at most k
    fragments are left (fewer than k + 1): one more loss and they cannot be read.

    An upper estimate of the loss: a fragment with one bad segment counts as missing, and
    the parts of a multipart object are pooled. Entries without an index (a pending row
    with no durable notice) count nothing."""
    return sum(1 for indexes in versions.values() if k + m - len(indexes) < k + 1)


@dataclass(frozen=True)
class ClusterReport:
    volumes: tuple[VolumeReport, ...]
    k: int
    m: int
    degraded: int  # distinct versions with heal entries on the volumes that answered
    at_risk: int
    lists_truncated: bool = False  # some volume had more versions than it listed

    @property
    def down(self) -> tuple[VolumeReport, ...]:
        return tuple(v for v in self.volumes if not v.up)

    @property
    def heal_backlog(self) -> int:
        """Heal entries on the volumes that answered (see `complete`)."""
        return sum(v.heal_depth or 0 for v in self.volumes if v.up)

    @property
    def complete(self) -> bool:
        """Every volume answered, so the totals cover the whole cluster."""
        return not self.down

    @property
    def degraded_exact(self) -> bool:
        return self.complete and not self.lists_truncated

    @property
    def healthy(self) -> bool:
        return self.complete and self.heal_backlog == 0

    @property
    def exit_code(self) -> int:
        return EXIT_HEALTHY if self.healthy else EXIT_UNHEALTHY


def build_report(volumes: Iterable[VolumeReport],
                 heal_lists: Iterable[Iterable[Mapping[str, Any]]], k: int, m: int,
                 lists_truncated: bool = False) -> ClusterReport:
    versions = merge_heal_versions(heal_lists)
    return ClusterReport(tuple(volumes), k, m, len(versions), count_at_risk(versions, k, m),
                         lists_truncated)


def to_json(report: ClusterReport) -> dict[str, Any]:
    """`shardgate admin status --json`: unknown numbers are null, never 0."""
    return {
        "healthy": report.healthy,
        "exit_code": report.exit_code,
        "cluster": {
            "erasure": {"k": report.k, "m": report.m},
            "volumes": len(report.volumes),
            "volumes_up": len(report.volumes) - len(report.down),
            "volumes_down": [v.id for v in report.down],
            "heal_backlog": report.heal_backlog,
            "heal_backlog_complete": report.complete,
            "degraded_objects": report.degraded,
            "degraded_objects_exact": report.degraded_exact,
            "at_risk": report.at_risk,
            "at_risk_rule": f"versions whose heal entries name at least m={report.m} "
                            f"missing fragment indexes (at most k={report.k} left)",
        },
        "volumes": [{
            "id": v.id, "url": v.url, "state": v.state, "reason": v.reason or None,
            "data_dir": v.data_dir or None,
            "disk": None if v.disk_total is None else {
                "total": v.disk_total, "used": v.disk_used, "free": v.disk_free},
            "objects": v.objects, "pending": v.pending, "retired": v.retired,
            "heal_backlog": v.heal_depth, "heal_versions": v.heal_versions,
            "last_scrub": v.last_scrub, "scrub_problems": v.scrub_problems,
        } for v in report.volumes],
    }


def _scrub_problems(last: Mapping[str, Any] | None) -> int | None:
    return None if not last else int(last.get("missing", 0)) + int(last.get("corrupt", 0))


def _scrubbed(when: float | None) -> str:
    """How long ago the last scrub pass finished ("never" before the first)."""
    if not when:
        return "never"
    age = max(0.0, time.time() - when)
    for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60)):
        if age >= seconds:
            return f"{age / seconds:.0f}{unit} ago"
    return f"{age:.0f}s ago"


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _num(n: int | None) -> str:
    return "-" if n is None else str(n)


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)
    right: frozenset[int] = frozenset()  # columns aligned right (numbers)

    def render(self) -> str:
        widths = [max(len(r[i]) for r in [self.header, *self.rows])
                  for i in range(len(self.header))]
        lines = []
        for row in [self.header, *self.rows]:
            cells = [c.rjust(w) if i in self.right else c.ljust(w)
                     for i, (c, w) in enumerate(zip(row, widths, strict=True))]
            lines.append("  ".join(cells).rstrip())
        return "\n".join(lines)


def render(report: ClusterReport) -> str:
    """The human table, then one line per cluster figure and the verdict."""
    table = Table(("VOLUME", "STATE", "DISK USED", "DISK FREE", "ROWS", "PENDING", "HEAL",
                   "RETIRED", "SCRUBBED", "URL"), right=frozenset({2, 3, 4, 5, 6, 7}))
    for v in report.volumes:
        where = f"{v.url} ({v.reason})" if v.reason else v.url
        table.rows.append((v.id, v.state if v.up else v.state.upper(),
                           human_bytes(v.disk_used), human_bytes(v.disk_free), _num(v.objects),
                           _num(v.pending), _num(v.heal_depth), _num(v.retired),
                           _scrubbed(v.last_scrub), where))
    down = [v.id for v in report.down]
    unknown = f"; unknown on {', '.join(down)}" if down else ""
    lower = "" if report.degraded_exact else ">= "
    why_lower = []
    if down:
        why_lower.append(f"{', '.join(down)} did not answer")
    if report.lists_truncated:
        why_lower.append("a volume's list was capped")
    lines = [
        table.render(),
        "",
        f"cluster:          {len(report.volumes)} volumes (EC {report.k}+{report.m}), "
        f"{len(report.volumes) - len(down)} up, {len(down)} down",
        f"heal backlog:     {report.heal_backlog} entries on the volumes that answered"
        f"{unknown}",
        f"degraded objects: {lower}{report.degraded} versions with heal entries"
        + (f" ({'; '.join(why_lower)})" if why_lower else ""),
        f"at risk:          {lower}{report.at_risk} versions whose heal entries leave them "
        f"at most {report.k} fragments",
    ]
    if report.healthy:
        lines.append("status:           healthy (exit 0)")
    else:
        problems = []
        if down:
            problems.append(f"{len(down)} volume{'s' if len(down) != 1 else ''} not answering")
        if report.heal_backlog:
            problems.append(f"heal backlog {report.heal_backlog}")
        lines.append(f"status:           NOT healthy: {', '.join(problems)} (exit 1)")
    return "\n".join(lines)


@dataclass(frozen=True)
class Backlog:
    """Heal queue depth per volume (None: the volume did not answer)."""

    depths: Mapping[str, int | None]

    @property
    def total(self) -> int:
        return sum(d for d in self.depths.values() if d is not None)

    @property
    def silent(self) -> list[str]:
        return [vid for vid, d in self.depths.items() if d is None]

    @property
    def done(self) -> bool:
        """Zero everywhere, and known to be: every volume answered."""
        return not self.silent and self.total == 0

    def describe(self) -> str:
        text = f"heal backlog {self.total}"
        if self.silent:
            text += f" (unknown on {', '.join(self.silent)}: not answering)"
        return text
