"""What the cluster's own processes say: fragment bytes from the volumes' /metrics, 503s from
the gateway's, peak RSS and CPU seconds of every process of a `shardgate dev` tree."""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.cpu import process_times
from shardgate.procs import descendants

FRAGMENT_BYTES = "shardgate_fragment_sent_bytes_total"  # a volume's fragment bytes, any route
_SAMPLE = re.compile(r'^(\w+)(?:\{(.*)\})?\s+(\S+)$')  # label values may hold braces
SAMPLE_SECONDS = 0.2


@dataclass
class Cluster:
    """A dev cluster's processes and URLs, from <data>/processes.json."""

    gateway_url: str
    gateway_pid: int
    volumes: dict[str, tuple[str, int]]  # id -> (url, pid)

    @classmethod
    def from_data_dir(cls, data: Path) -> Cluster:
        processes = json.loads((data / "processes.json").read_text())
        volumes, gateway = {}, None
        for child in processes["children"]:
            if child["role"] == "volume":
                volumes[child["id"]] = (child["url"], child["pid"])
            elif child["role"] == "gateway":
                gateway = (child["url"], child["pid"])
        if gateway is None:
            raise RuntimeError(f"no gateway in {data / 'processes.json'}")
        return cls(gateway[0], gateway[1], volumes)

    def process_kinds(self) -> dict[int, str]:
        """pid -> kind ('gateway' for the gateway's main process, 'gateway worker' for its
        descendants, 'volume'), read fresh since workers can be restarted."""
        kinds = {pid: "volume" for _, pid in self.volumes.values()}
        kinds[self.gateway_pid] = "gateway"
        for pid in descendants(self.gateway_pid):
            kinds[pid] = "gateway worker"
        return kinds


def scrape(url: str, metric: str, timeout: float = 10) -> dict[str, float]:
    """label text -> value of every sample of `metric` at `url` (Prometheus text)."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and match.group(1) == metric:
            out[match.group(2) or ""] = float(match.group(3))
    return out


def fragment_bytes(cluster: Cluster) -> float:
    """Fragment bytes sent so far, summed over every volume."""
    return sum(sum(scrape(url + "/metrics", FRAGMENT_BYTES).values())
               for url, _ in cluster.volumes.values())


def gateway_status_count(gateway_url: str, status: str) -> float:
    """Requests the gateway answered with `status`, summed over operations."""
    samples = scrape(gateway_url + "/-/metrics", "shardgate_requests_total")
    return sum(v for labels, v in samples.items() if f'status="{status}"' in labels)


@contextlib.contextmanager
def fragments_sent(cluster: Cluster | None) -> Iterator[list[float]]:
    """Yields a list that holds, after the block, the fragment bytes the volumes sent
    during it (empty without a cluster)."""
    out: list[float] = []
    before = fragment_bytes(cluster) if cluster else 0.0
    yield out
    if cluster:
        out.append(fragment_bytes(cluster) - before)


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class ProcessUse:
    """Peak RSS and CPU seconds of each process kind over one block."""

    peak_rss_mib: dict[str, float] = field(default_factory=dict)  # kind -> max over processes
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # kind -> summed CPU seconds
    kernel_seconds: dict[str, float] = field(default_factory=dict)  # the system part of it

    def cpu_per_gb(self, nbytes: float) -> dict[str, float]:
        gb = nbytes / 1e9
        return {k: v / gb for k, v in self.cpu_seconds.items()} if gb else {}

    def kernel_per_gb(self, nbytes: float) -> dict[str, float]:
        gb = nbytes / 1e9
        return {k: v / gb for k, v in self.kernel_seconds.items()} if gb else {}


class _Sampler(threading.Thread):
    def __init__(self, cluster: Cluster) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.stop = threading.Event()
        self.peaks: dict[int, int] = {}
        self.kinds: dict[int, str] = {}

    def run(self) -> None:
        last_kinds = 0.0
        while not self.stop.is_set():
            if time.monotonic() - last_kinds > 2:  # workers may come and go
                self.kinds.update(self.cluster.process_kinds())
                last_kinds = time.monotonic()
            for pid in self.kinds:
                self.peaks[pid] = max(self.peaks.get(pid, 0), _rss_kib(pid))
            self.stop.wait(SAMPLE_SECONDS)


@contextlib.contextmanager
def process_use(cluster: Cluster | None) -> Iterator[ProcessUse]:
    """Sample VmRSS of every process in the tree every 0.2 s and diff CPU seconds."""
    use = ProcessUse()
    if cluster is None:
        yield use
        return
    sampler = _Sampler(cluster)
    sampler.kinds.update(cluster.process_kinds())
    cpu_before = {pid: process_times(pid) for pid in sampler.kinds}
    sampler.start()
    try:
        yield use
    finally:
        sampler.stop.set()
        sampler.join()
        for pid, kind in sampler.kinds.items():
            use.peak_rss_mib[kind] = max(use.peak_rss_mib.get(kind, 0.0),
                                         sampler.peaks.get(pid, 0) / 1024)
            (user, system), (user0, system0) = process_times(pid), cpu_before.get(pid, (0, 0))
            use.cpu_seconds[kind] = (use.cpu_seconds.get(kind, 0.0)
                                     + max(user + system - user0 - system0, 0.0))
            use.kernel_seconds[kind] = (use.kernel_seconds.get(kind, 0.0)
                                        + max(system - system0, 0.0))
