"""What every workload is handed: the plan (sizes, repeats), the target with its clients,
the source files, and the recorder that collects figures per row and target."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.crt import Crt
from bench.servers import Target
from bench.volumes import Cluster

MiB = 1 << 20
BUCKET = "bench"
LIST_PREFIX = "list/"


@dataclass(frozen=True)
class Plan:
    """Sizes and repeats of one run (`full` or `quick`)."""

    quick: bool
    repeats: int
    big: int  # workload 1 and 2's object
    range_size: int
    range_concurrency: tuple[int, ...]
    range_passes: int  # ranged GETs read the object this many times per concurrency
    kv_objects: int
    kv_size: int
    kv_min: int
    kv_max: int
    kv_concurrency: int
    kv_closed_seconds: float
    kv_open_seconds: float
    small_ops: int
    small_concurrency: int
    fanin_size: int
    fanin_readers: int
    ckpt_uploads: int
    ckpt_size: int
    ckpt_part: int
    ckpt_connections: int
    list_keys: int
    list_dirs: int
    list_page: int
    slow_repeats: dict[int, int] = field(default_factory=dict)  # workload -> repeats

    @classmethod
    def full(cls, repeats: int) -> Plan:
        return cls(False, repeats, 1024 * MiB, 8 * MiB, (8, 32, 64), 2, 200, 16 * MiB,
                   256 << 10, 2 * MiB, 64, 10, 12, 10_000, 32, 256 * MiB, 100, 16,
                   256 * MiB, 8 * MiB, 10, 100_000, 100, 1000)

    @classmethod
    def quick_plan(cls, repeats: int) -> Plan:
        return cls(True, repeats, 64 * MiB, 8 * MiB, (8, 32, 64), 4, 20, 16 * MiB,
                   256 << 10, 2 * MiB, 64, 4, 5, 1000, 32, 32 * MiB, 100, 4,
                   64 * MiB, 8 * MiB, 10, 10_000, 100, 1000)

    def repeats_for(self, workload: int) -> int:
        return min(self.repeats, self.slow_repeats.get(workload, self.repeats))


@dataclass
class Sources:
    """Files uploaded by the bench; their bytes are what a real store must return."""

    big: Path
    kv: list[Path]  # object i is kv[i % len(kv)]
    large: Path  # fan-in and checkpoint objects
    small: Path
    empty: Path

    @classmethod
    def write(cls, workdir: Path, plan: Plan) -> Sources:
        def random_file(name: str, size: int) -> Path:
            path = workdir / name
            with open(path, "wb") as fh:
                for offset in range(0, size, 8 * MiB):
                    fh.write(os.urandom(min(8 * MiB, size - offset)))
            return path

        large = max(plan.fanin_size, plan.ckpt_size)
        return cls(random_file("big.bin", plan.big),
                   [random_file(f"kv{i}.bin", plan.kv_size) for i in range(4)],
                   random_file("large.bin", large), random_file("small.bin", 4096),
                   random_file("empty.bin", 0))


@dataclass
class Ctx:
    """One target under measurement, with its clients and what has been set up on it."""

    name: str
    target: Target
    real: bool  # stores the bytes it is sent (shardgate, --endpoint); else serves a pattern
    crt: Crt
    boto: Any  # a boto3 S3 client (its classes are built at run time)
    plan: Plan
    sources: Sources
    workdir: Path
    cluster: Cluster | None = None  # a dev cluster started by the bench: counters, RSS
    role: str = "ours"  # or the ceiling it is: s3shape, one-hop, two-hop
    made: set[str] = field(default_factory=set)
    listed: set[int] = field(default_factory=set)  # indexes of list_key()s that exist

    def list_key(self, i: int) -> str:
        """Key i of the listing workload; the small-object PUTs write these keys too, so
        that workload 7 has fewer to create."""
        return f"{LIST_PREFIX}d{i % self.plan.list_dirs:02d}/k{i:06d}"

    def path(self, key: str) -> str:
        return f"/{BUCKET}/{key}"

    def source(self, path: Path) -> Path | None:
        """The file a GET's bytes must match; None: the ceiling's pattern."""
        return path if self.real else None

    def once(self, what: str, setup: Callable[[], None]) -> None:
        """Run an untimed setup step the first time a workload needs it on this target."""
        if what not in self.made:
            setup()
            self.made.add(what)


@dataclass
class Recorder:
    """Figures per row and target, one per repeat, plus per-repeat details."""

    values: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    details: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    errors: dict[str, dict[str, str]] = field(default_factory=dict)

    def add(self, row: str, target: str, value: float, **details: Any) -> None:
        self.values.setdefault(row, {}).setdefault(target, []).append(value)
        if details:
            self.details.setdefault(row, {}).setdefault(target, []).append(details)
        shown = f"{value:,.1f}" if value >= 10 else f"{value:.3g}"
        print(f"      {row:22} {target:22} {shown}", flush=True)

    def fail(self, row: str, target: str, message: str) -> None:
        self.errors.setdefault(row, {})[target] = message[:300]
        self.notes.append(f"{target} {row}: {message}"[:400])
        print(f"      {row:22} {target:22} ERROR {message[:200]}", flush=True)

    def first(self, row: str, target: str) -> list[float]:
        return self.values.get(row, {}).get(target, [])
