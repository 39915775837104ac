"""CPU time used by the client, the front process and the backends during one measurement."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

from shardgate.procs import descendants

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
FRONT_ROLES = ("gateway", "forwarder", "store")


def process_times(pid: int | str, children: bool = False) -> tuple[float, float]:
    """User and system seconds (+ reaped children's) of a process; zeros if it is gone.
    System time is the kernel's work on the process's behalf: socket and file copies,
    page-cache pages it fills, fsync."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rpartition(")")[2].split()
    except OSError:
        return 0.0, 0.0
    # after the command: state=0 ... utime=11, stime=12, cutime=13, cstime=14
    user, system = int(fields[11]), int(fields[12])
    if children:
        user, system = user + int(fields[13]), system + int(fields[14])
    return user / TICKS, system / TICKS


def _process_seconds(pid: int | str, children: bool = False) -> float:
    """utime + stime (+ reaped children's) of a process, in seconds; 0 if it is gone."""
    return sum(process_times(pid, children))


def _tree_seconds(pid: int) -> float:
    """CPU seconds of a process and its live descendants (e.g. Hypercorn workers)."""
    return sum(_process_seconds(p) for p in [pid, *descendants(pid)])


def _machine_seconds() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine since boot (idle and iowait apart)."""
    try:
        with open("/proc/stat") as fh:
            values = [int(v) for v in fh.readline().split()[1:9]]
    except OSError:
        return 0.0, 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = values
    return (user + nice + system + irq + softirq) / TICKS, steal / TICKS


COLUMNS = ("operation", "client", "target", "cost unit", "bench client", "front", "backends",
           "other cores", "steal cores")
EXPLANATION = (
    "CPU per unit of work, for the figure above: core-seconds per GB moved or core-ms per\n"
    "operation, in the bench client (boto3 threads or curl), the front process (gateway,\n"
    "forwarder or one-hop store) and the backends (6 volume servers or fragment apps);\n"
    "other = cores busy elsewhere (kernel threads, other processes), steal = cores taken by\n"
    "the hypervisor, both averaged over the measurement.")


@dataclass
class CpuUse:
    """Average cores busy over the measurement, per group."""

    client: float = 0.0  # this process and the curl processes it ran
    front: float = 0.0  # gateway / forwarder / one-hop store
    backends: float = 0.0  # volume servers / fragment apps
    other: float = 0.0  # every other process and the kernel
    steal: float = 0.0  # taken by the hypervisor

    def cost_cells(self, rate: float, unit: str) -> list[str]:
        """[unit, client, front, backends, other, steal] for a figure of `rate` `unit`."""
        cost_unit = "core-ms/op" if unit == "ops/s" else "core-s/GB"
        costs = [f"{1000 * cores / rate:.2f}" if rate else "-"
                 for cores in (self.client, self.front, self.backends)]
        return [cost_unit, *costs, f"{self.other:.2f}", f"{self.steal:.2f}"]


def _snapshot(pids: dict[str, int]) -> tuple[float, float, float, float, float]:
    front = sum(_tree_seconds(p) for r, p in pids.items() if r in FRONT_ROLES)
    backends = sum(_tree_seconds(p) for r, p in pids.items() if r.startswith("v"))
    busy, steal = _machine_seconds()
    return _process_seconds("self", children=True), front, backends, busy, steal


@contextlib.contextmanager
def measure(pids: dict[str, int]) -> Iterator[CpuUse]:
    """Fill the yielded CpuUse when the block ends."""
    use = CpuUse()
    before, start = _snapshot(pids), time.monotonic()
    try:
        yield use
    finally:
        after, wall = _snapshot(pids), max(time.monotonic() - start, 1e-9)
        client, front, backends, busy, steal = (
            (a - b) / wall for a, b in zip(after, before, strict=True))
        use.client, use.front, use.backends, use.steal = client, front, backends, steal
        use.other = max(0.0, busy - client - front - backends)
