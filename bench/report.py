"""The machine description and the aligned plain-text results table."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from importlib import metadata

COLUMNS = ("operation", "client", "shardgate", "one-hop limit", "two-hop limit", "unit")
NUMERIC = frozenset({2, 3, 4})
# column heading of each target
LABELS = {"one-hop": "one-hop limit", "two-hop": "two-hop limit",
          "one-hop-granian": "one-hop granian", "two-hop-granian": "two-hop granian",
          "gateway-granian": "gateway granian", "shardgate-granian": "shardgate granian"}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_gib() -> str:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / (1 << 20):.0f} GiB"
    except OSError:
        pass
    return "? GiB"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def machine_line() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"machine: nproc {cores}, {_cpu_model()}, {_memory_gib()} RAM, "
            f"Linux {platform.release()}, Python {platform.python_version()}")


def source_line(repo: os.PathLike[str] | str, gateway_workers: int) -> str:
    """The commit measured, and whether files outside bench/ differ from it."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(repo), *args], capture_output=True,
                                  text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)bench")
    return (f"source: shardgate at git {commit}"
            f"{' plus uncommitted changes' if dirty else ''}; gateway workers (and the "
            f"ceilings' store and forwarder processes): "
            f"{gateway_workers}")


def software_line(curl: tuple[int, ...] | None) -> str:
    curl_text = ".".join(map(str, curl)) if curl else "absent"
    return ("software: " + ", ".join(f"{p} {_version(p)}" for p in
                                     ("boto3", "hypercorn", "aiohttp", "pyeclib"))
            + f", curl {curl_text}")


def cell(value: float | str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def table(rows: Sequence[Sequence[str]], columns: Sequence[str] = COLUMNS,
          numeric: frozenset[int] = NUMERIC) -> str:
    """Columns padded to their widest cell; figures right-aligned, text left-aligned."""
    all_rows = [list(columns), *[list(r) for r in rows]]
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(columns))]

    def line(r: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                         for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(all_rows[0]), rule, *(line(r) for r in all_rows[1:])])
