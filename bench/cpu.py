"""CPU time used by the client, the front process and the backends during one measurement."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
FRONT_ROLES = ("gateway", "forwarder", "store")


def _process_seconds(pid: int | str, children: bool = False) -> float:
    """utime + stime (+ reaped children's) of a process, in seconds; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    # after the command: state=0 ... utime=11, stime=12, cutime=13, cstime=14
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICKS


def _machine_seconds() -> tuple[float, float]:
    """(busy, iowait) CPU seconds of the whole machine since boot."""
    try:
        with open("/proc/stat") as fh:
            values = [int(v) for v in fh.readline().split()[1:]]
    except OSError:
        return 0.0, 0.0
    idle, iowait = values[3], values[4]
    return (sum(values[:8]) - idle - iowait) / TICKS, iowait / TICKS


@dataclass
class CpuUse:
    """Average cores busy over the measurement, per group."""

    client: float = 0.0  # this process and the curl processes it ran
    front: float = 0.0  # gateway / forwarder / one-hop store
    backends: float = 0.0  # volume servers / fragment apps
    machine: float = 0.0  # every process on the machine
    iowait: float = 0.0

    def cells(self) -> list[str]:
        return [f"{v:.2f}" for v in (self.client, self.front, self.backends, self.machine,
                                     self.iowait)]


def _snapshot(pids: dict[str, int]) -> tuple[float, float, float, float, float]:
    front = sum(_process_seconds(p) for r, p in pids.items() if r in FRONT_ROLES)
    backends = sum(_process_seconds(p) for r, p in pids.items() if r.startswith("v"))
    busy, iowait = _machine_seconds()
    return _process_seconds("self", children=True), front, backends, busy, iowait


@contextlib.contextmanager
def measure(pids: dict[str, int]) -> Iterator[CpuUse]:
    """Fill the yielded CpuUse when the block ends."""
    use = CpuUse()
    before, start = _snapshot(pids), time.monotonic()
    try:
        yield use
    finally:
        after, wall = _snapshot(pids), max(time.monotonic() - start, 1e-9)
        use.client, use.front, use.backends, use.machine, use.iowait = (
            (a - b) / wall for a, b in zip(after, before, strict=True))
