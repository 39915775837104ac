"""The rows of `shardgate bench` and the plain-text tables: ours beside each ceiling, with
the median and min-max spread of the repeats, ratios, and the per-process table."""

from __future__ import annotations

from dataclasses import dataclass

from bench.context import MiB, Plan, Recorder
from bench.report import table
from bench.stats import Summary, fmt, fmt_summary, median, ratio


@dataclass(frozen=True)
class Row:
    id: str
    workload: int
    operation: str
    client: str
    unit: str
    ratio: bool = True  # shown in the ours/ceiling columns (curl and CRT rows only)


def _size(n: int) -> str:
    return f"{n // (1 << 30)} GiB" if n >= 1 << 30 and n % (1 << 30) == 0 else f"{n // MiB} MiB"


def rows(plan: Plan) -> list[Row]:
    big, kv = _size(plan.big), f"{plan.kv_objects} x {_size(plan.kv_size)}"
    out = [
        Row("1.put.boto3", 1, f"PUT {big}", "boto3 put_object", "MB/s", False),
        Row("1.put.curl", 1, f"PUT {big}", "curl -T", "MB/s"),
        Row("1.put.crt", 1, f"PUT {big}", "crt, 1 request", "MB/s"),
        Row("1.store.cached", 1, "  data disk: 1.5 bytes written + fsync per byte stored",
            "page cache", "core-s/GB", False),
        Row("1.store.direct", 1, "  same, bypassing the page cache", "O_DIRECT", "core-s/GB",
            False),
        Row("1.get.boto3", 1, f"GET {big}", "boto3 get_object", "MB/s", False),
        Row("1.get.curl", 1, f"GET {big}", "curl -o /dev/null", "MB/s"),
        Row("1.get.crt", 1, f"GET {big}", "crt, 1 request", "MB/s"),
    ]
    out += [Row(f"2.ranged.{n}", 2, f"GET 8 MiB ranges of {big}, If-Match", f"crt, {n} in flight",
                "MB/s") for n in plan.range_concurrency]
    out += [
        Row("3.kv.closed", 3, f"GET 256K-2M ranges of {kv}", "crt, 64 in flight", "MB/s"),
        Row("3.kv.open.p50", 3, "  same, open loop at 50 %: p50", "crt, Poisson", "ms"),
        Row("3.kv.open.p99", 3, "  same, open loop at 50 %: p99", "crt, Poisson", "ms"),
    ]
    for op in ("put", "get"):
        verb = op.upper()
        out += [
            Row(f"4.small.{op}", 4, f"{verb} 4 KiB x {plan.small_ops:,}",
                f"crt, {plan.small_concurrency} in flight", "ops/s"),
            Row(f"4.small.{op}.p50", 4, f"  {verb} 4 KiB p50", "crt", "ms"),
            Row(f"4.small.{op}.p99", 4, f"  {verb} 4 KiB p99", "crt", "ms"),
        ]
    out += [
        Row("4.fsync", 4, "  data disk: 4 KiB write + fsync", "this process", "fsync/s", False),
        Row("5.fanin", 5, f"GET {_size(plan.fanin_size)}, {plan.fanin_readers} readers of one "
            "object", "aiohttp, 1 request each", "MB/s"),
        Row("5.fanin.fragments", 5, "  fragment bytes sent / object size", "volume counters",
            "x", False),
        Row("6.ckpt", 6, f"PUT {plan.ckpt_uploads} x {_size(plan.ckpt_size)} multipart, "
            f"{_size(plan.ckpt_part)} parts", f"crt, {plan.ckpt_connections} parts in flight each",
            "MB/s"),
        Row("6.ckpt.503", 6, "  503 SlowDown answers (must be 0)", "gateway counters", "count",
            False),
    ]
    keys = f"{plan.list_keys:,} keys"
    for mode, what in (("flat", "no delimiter"), ("delim", "delimiter /, then each dir")):
        out += [
            Row(f"7.list.{mode}.p50", 7, f"ListObjectsV2 {keys}, {what}: page p50", "crt", "ms"),
            Row(f"7.list.{mode}.p99", 7, "  page p99", "crt", "ms"),
            Row(f"7.list.{mode}.total", 7, "  whole walk", "crt", "s"),
        ]
    out += [Row(f"8.amp.ranged.{n}", 8, f"read amplification, workload 2 at {n}",
                "volume counters", "x", False) for n in plan.range_concurrency]
    out.append(Row("8.amp.kv", 8, "read amplification, workload 3 closed loop",
                   "volume counters", "x", False))
    return out


@dataclass(frozen=True)
class Columns:
    """Which target fills each column (None: not run)."""

    ours: str
    s3shape: str | None
    one_hop: str | None
    two_hop: str | None
    s3shape_label: str
    stack: str


def _summary(rec: Recorder, row: str, target: str | None) -> Summary | None:
    values = rec.values.get(row, {}).get(target or "", [])
    return Summary.of(values) if values else None


def main_table(plan: Plan, rec: Recorder, cols: Columns, workloads: set[int]) -> str:
    lines = []
    for row in rows(plan):
        if row.workload not in workloads:
            continue
        ours = _summary(rec, row.id, cols.ours)
        error = rec.errors.get(row.id, {}).get(cols.ours)
        ceilings = [_summary(rec, row.id, t) for t in (cols.s3shape, cols.one_hop, cols.two_hop)]
        ratios = ["", ""]
        if row.ratio and ours:
            ratios = [fmt(ratio(ours.median, c.median if c else None))
                      for c in (ceilings[0], ceilings[2])]
        lines.append([row.operation, row.client, "ERROR" if error and not ours
                      else fmt_summary(ours),
                      *(fmt(c.median) if c else "-" for c in ceilings), *ratios, row.unit])
    columns = ("operation", "client", f"{cols.ours} median [min-max]",
               f"s3shape {cols.s3shape_label}", f"one-hop {cols.stack}",
               f"two-hop {cols.stack}", "ours/s3shape", "ours/two-hop", "unit")
    return table(lines, columns, frozenset(range(2, 8)))


PROCESS_ROWS = ("1.put.boto3", "1.put.curl", "1.put.crt", "1.get.boto3", "1.get.curl",
                "1.get.crt", "5.fanin", "6.ckpt")


def process_table(plan: Plan, rec: Recorder, ours: str) -> str:
    """Workload 9: peak RSS (max over repeats) and CPU s/GB (median) per process kind, and
    the part of it the kernel spent on the processes' behalf (system time)."""
    names = {r.id: (r.operation, r.client) for r in rows(plan)}
    lines = []
    for row in PROCESS_ROWS:
        details = [d for d in rec.details.get(row, {}).get(ours, []) if "peak_rss_mib" in d]
        if not details:
            continue
        kinds = sorted({k for d in details for k in d["peak_rss_mib"]})
        for kind in kinds:
            rss = max(d["peak_rss_mib"].get(kind, 0.0) for d in details)
            cpu = [d["cpu_s_per_gb"][kind] for d in details if kind in d["cpu_s_per_gb"]]
            kernel = [d["kernel_s_per_gb"][kind] for d in details
                      if kind in d.get("kernel_s_per_gb", {})]
            lines.append([*names[row], kind, fmt(rss), fmt(median(cpu)) if cpu else "-",
                          fmt(median(kernel)) if kernel else "-"])
    if not lines:
        return ""
    return table(lines, ("operation", "client", "process kind", "peak RSS MiB (one process)",
                         "CPU s/GB (all of the kind)", "of which in the kernel"),
                 frozenset({3, 4, 5}))
