"""What the bench measures: its settings, the rows of the table and the header lines."""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench import report

MiB = 1 << 20
RANGE_PART = 8 * MiB
RANGE_THREADS = 8
OPS_THREADS = 16


@dataclass(frozen=True)
class Settings:
    size: int  # bytes of the big object
    ops_seconds: float  # length of each 4 KiB ops phase...
    max_ops: int  # ...or this many operations per thread, whichever ends first
    rounds: int  # every figure is the best of this many rounds
    range_passes: int  # the ranged GETs read the whole object this many times

    @classmethod
    def full(cls) -> Settings:
        return cls(256 * MiB, 5, 2000, 3, 2)

    @classmethod
    def quick(cls) -> Settings:
        return cls(64 * MiB, 2, 2000, 1, 1)

    @property
    def size_label(self) -> str:
        return f"{self.size // MiB} MiB"


@dataclass(frozen=True)
class Row:
    id: str
    operation: str
    client: str
    unit: str


def rows(s: Settings) -> list[Row]:
    big = s.size_label
    return [
        Row("put-boto3", f"PUT {big}", "boto3 put_object", "MB/s"),
        Row("put-transfer", f"PUT {big}", "boto3 upload_file", "MB/s"),
        Row("put-curl", f"PUT {big}", "curl -T", "MB/s"),
        Row("get-boto3", f"GET {big}", "boto3 get_object", "MB/s"),
        Row("get-transfer", f"GET {big}", "boto3 download_file", "MB/s"),
        Row("get-curl", f"GET {big}", "curl -o /dev/null", "MB/s"),
        Row("ranged", f"GET {RANGE_THREADS} x 8 MiB ranges", f"boto3, {RANGE_THREADS} threads",
            "MB/s"),
        Row("small-put", "PUT 4 KiB", f"boto3, {OPS_THREADS} threads", "ops/s"),
        Row("small-get", "GET 4 KiB", f"boto3, {OPS_THREADS} threads", "ops/s"),
    ]


def header(s: Settings, curl: tuple[int, ...] | None, quick: bool, profiled: bool,
           source: str) -> list[str]:
    ops = f"{s.ops_seconds:g} s or {s.max_ops} ops per thread, whichever ends first"
    lines = [
        f"shardgate benchmark{' (quick)' if quick else ''}, "
        f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        report.machine_line(),
        report.software_line(curl),
        source,
        "shardgate = `shardgate dev` (1 gateway + 6 volume servers, EC 4+2, 1 MiB segments); "
        "one-hop = trivial app under the same Hypercorn setup;",
        "two-hop = trivial aiohttp forwarder -> 6 trivial fragment apps (a quarter of the "
        "bytes to each, no encoding, hashing or fsync)",
        f"MB = 10^6 bytes; every figure is the best of {s.rounds} round(s), the targets "
        f"measured in turn; 4 KiB ops: {ops}; ranged GETs read the object {s.range_passes}x",
        "boto3 over plain http signs the payload SHA-256 and sends a CRC32 checksum; "
        "curl sends x-amz-content-sha256: UNSIGNED-PAYLOAD",
    ]
    if profiled:
        lines.append("PROFILED RUN: py-spy was sampling, the figures are lower than usual")
    return lines
