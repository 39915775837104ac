"""Benchmark shardgate beside the one-hop and two-hop limits of its serving stack.

    python -m bench.run [--quick] [--targets shardgate,one-hop,two-hop] [--only ID,...]
                        [--profile [ROLES]]

Each target is started fresh, measured by the same clients, and stopped before the next
starts, so they never compete for the CPU. The table goes to stdout and to
bench/results/latest.txt (git-ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import clients as c
from bench import cpu, pyspy, report, servers

RESULTS = Path(__file__).resolve().parent / "results"
BUCKET = "bench"
BIG_KEY = "big"
SMALL_SIZE = 4096
RANGE_PART = 8 * c.MiB
RANGE_THREADS = 8
OPS_THREADS = 16
DEFAULT_PROFILE_ROLES = "gateway,forwarder,store"
CPU_COLUMNS = ("operation", "client", "target", "bench client", "front", "backends",
               "machine", "iowait")
TARGETS: dict[str, Callable[[Path], AbstractContextManager[servers.Target]]] = {
    "shardgate": servers.shardgate_dev, "one-hop": servers.one_hop, "two-hop": servers.two_hop}


@dataclass(frozen=True)
class Settings:
    size: int
    ops_seconds: float
    max_ops: int
    repeats: int
    range_passes: int

    @property
    def size_label(self) -> str:
        return f"{self.size // c.MiB} MiB"


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


class Session:
    """Measures one running target; every figure lands in `results` (or an error note)."""

    def __init__(self, target: servers.Target, settings: Settings, workdir: Path,
                 source: Path, selected: set[str], profile_roles: list[str],
                 notes: list[str]) -> None:
        self.target = target
        self.s = settings
        self.workdir = workdir
        self.source = source
        self.selected = selected
        self.profile_pids = {r: p for r, p in target.pids.items() if r in profile_roles}
        self.notes = notes
        self.results: dict[str, float | str] = {}
        self.cpu: dict[str, cpu.CpuUse] = {}
        self.clients = [c.s3_client(target) for _ in range(OPS_THREADS)]
        self.client = self.clients[0]
        self.small_keys: list[list[str]] = []

    def _profiled(self, row_id: str) -> AbstractContextManager[Any]:
        if not self.profile_pids:
            return contextlib.nullcontext()
        return pyspy.record(self.profile_pids, RESULTS, f"{self.target.name}-{row_id}")

    def measure(self, row_id: str, fn: Callable[[], float]) -> None:
        if row_id not in self.selected:
            return
        print(f"  {self.target.name:10} {row_id:13}", end=" ", flush=True)
        try:
            with self._profiled(row_id), cpu.measure(self.target.pids) as use:
                value = fn()
            self.cpu[row_id] = use
            self.results[row_id] = value
            print(report.cell(value), flush=True)
        except Exception as exc:
            self.results[row_id] = "error"
            self.notes.append(f"{self.target.name} {row_id}: {exc!r}"[:400])
            print(f"error: {exc!r}"[:200], flush=True)

    def best_rate(self, run_once: Callable[[], float]) -> float:
        """Best of `repeats` runs of a transfer of `size` bytes, in MB/s."""
        return max(self.s.size / run_once() / 1e6 for _ in range(self.s.repeats))

    def ensure_big(self) -> None:
        """GETs need the big object; PUT it untimed when no PUT row ran."""
        try:
            self.client.head_object(Bucket=BUCKET, Key=BIG_KEY)
        except Exception:
            c.put_object(self.client, BUCKET, BIG_KEY, self.source)

    def run(self, curl_ok: bool) -> dict[str, float | str]:
        for client in self.clients:  # bucket + one warm connection per client
            with contextlib.suppress(Exception):
                client.create_bucket(Bucket=BUCKET)
            client.put_object(Bucket=BUCKET, Key="warmup", Body=b"x")
        s, size, src = self.s, self.s.size, self.source
        self.measure("put-boto3", lambda: self.best_rate(
            lambda: c.put_object(self.client, BUCKET, BIG_KEY, src)))
        self.measure("put-transfer", lambda: self.best_rate(
            lambda: c.upload_file(self.client, BUCKET, "big-transfer", src)))
        if curl_ok:
            self.measure("put-curl", lambda: self.best_rate(
                lambda: c.curl_put(self.target, BUCKET, "big-curl", src)))
        if self.selected & {"get-boto3", "get-transfer", "get-curl", "ranged"}:
            self.ensure_big()
        self.measure("get-boto3", lambda: self.best_rate(
            lambda: c.get_object(self.client, BUCKET, BIG_KEY, size)))
        self.measure("get-transfer", lambda: self.best_rate(
            lambda: c.download_file(self.client, BUCKET, BIG_KEY, size,
                                    self.workdir / "download.bin")))
        if curl_ok:
            self.measure("get-curl", lambda: self.best_rate(
                lambda: c.curl_get(self.target, BUCKET, BIG_KEY)))
        self.measure("ranged", lambda: self._phase(c.ranged_gets(
            self.clients[:RANGE_THREADS], BUCKET, BIG_KEY, size, RANGE_PART, s.range_passes),
            "ranged"))
        self.measure("small-put", self._small_put)
        self.measure("small-get", self._small_get)
        return self.results

    def _phase(self, result: c.PhaseResult, row_id: str) -> float:
        if result.errors:
            self.notes.append(f"{self.target.name} {row_id}: {result.errors} of {result.ops} "
                              "operations failed (not counted)")
        return result.rate

    def _small_put(self) -> float:
        body = os.urandom(SMALL_SIZE)
        result, self.small_keys = c.small_puts(self.clients, BUCKET, body, self.s.ops_seconds,
                                               self.s.max_ops)
        return self._phase(result, "small-put")

    def _small_get(self) -> float:
        if not any(self.small_keys):
            body = os.urandom(SMALL_SIZE)
            _, self.small_keys = c.small_puts(self.clients, BUCKET, body, 60, 20)
        if not any(self.small_keys):
            raise RuntimeError("no small object could be written to read back")
        return self._phase(c.small_gets(self.clients, BUCKET, self.small_keys, SMALL_SIZE,
                                        self.s.ops_seconds, self.s.max_ops), "small-get")


def _write_source(path: Path, size: int) -> None:
    with open(path, "wb") as fh:
        for offset in range(0, size, 8 * c.MiB):
            fh.write(os.urandom(min(8 * c.MiB, size - offset)))


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="shardgate-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _header(s: Settings, curl: tuple[int, ...] | None, quick: bool) -> list[str]:
    ops = f"{s.ops_seconds:g} s or {s.max_ops} ops per thread, whichever ends first"
    return [
        f"shardgate benchmark{' (quick)' if quick else ''}, "
        f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        report.machine_line(),
        report.software_line(curl),
        "targets: shardgate = `shardgate dev` (1 gateway + 6 volumes, EC 4+2, 1 MiB segments); "
        "one-hop = trivial app under the same Hypercorn; two-hop = trivial aiohttp forwarder "
        "-> 6 trivial fragment apps (1/4 of the bytes each, no encoding, no fsync)",
        f"MB = 10^6 bytes; {s.size_label} transfers: best of {s.repeats}; 4 KiB ops: {ops}; "
        f"ranges: {s.range_passes} pass(es) over the object",
        "boto3 over http signs the payload SHA-256 and sends a CRC32 checksum; curl sends "
        "x-amz-content-sha256: UNSIGNED-PAYLOAD",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="64 MiB objects and 2 s per ops phase (a smoke run)")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--only", default="", help="comma-separated row ids: "
                        + ", ".join(r.id for r in rows(Settings(0, 0, 0, 0, 0))))
    parser.add_argument("--profile", nargs="?", const=DEFAULT_PROFILE_ROLES, default="",
                        help="py-spy record these roles during each measurement "
                             f"(default {DEFAULT_PROFILE_ROLES}) into bench/results/")
    args = parser.parse_args(argv)
    settings = (Settings(64 * c.MiB, 2, 2000, 1, 1) if args.quick
                else Settings(256 * c.MiB, 5, 2000, 3, 2))
    all_rows = rows(settings)
    selected = set(args.only.split(",")) if args.only else {r.id for r in all_rows}
    targets = [t for t in args.targets.split(",") if t]
    unknown = [t for t in targets if t not in TARGETS] + [
        i for i in selected if i not in {r.id for r in all_rows}]
    if unknown:
        parser.error(f"unknown target or row: {', '.join(unknown)}")
    profile_roles = [r for r in args.profile.split(",") if r]
    if profile_roles and not pyspy.available():
        parser.error("--profile needs py-spy (pip install py-spy)")
    curl = c.curl_version()
    curl_ok = c.curl_can_sign()
    header = _header(settings, curl, args.quick)
    print("\n".join(header), flush=True)
    notes: list[str] = []
    results: dict[str, dict[str, float | str]] = {}
    cpu_use: dict[str, dict[str, cpu.CpuUse]] = {}
    with _workdir() as workdir:
        source = workdir / "source.bin"
        _write_source(source, settings.size)
        for name in targets:
            try:
                with TARGETS[name](workdir) as target:
                    session = Session(target, settings, workdir, source, selected,
                                      profile_roles, notes)
                    results[name] = session.run(curl_ok)
                    cpu_use[name] = session.cpu
            except Exception as exc:
                notes.append(f"{name}: could not be measured: {exc!r}"[:400])
                print(f"  {name}: {exc!r}", file=sys.stderr, flush=True)
    curl_missing = (f"curl {'.'.join(map(str, curl))} cannot sign (needs 7.75+)" if curl
                    else "curl not installed")
    lines = []
    for row in all_rows:
        if row.id not in selected:
            continue
        cells = []
        for name in TARGETS:
            if row.id.endswith("-curl") and not curl_ok:
                cells.append(curl_missing)
            else:
                cells.append(report.cell(results.get(name, {}).get(row.id)))
        lines.append([row.operation, row.client, *cells, row.unit])
    cpu_lines = [[row.operation, row.client, name, *use.cells()]
                 for row in all_rows for name in TARGETS
                 if (use := cpu_use.get(name, {}).get(row.id)) is not None]
    cpu_table = report.table(cpu_lines, CPU_COLUMNS, frozenset(range(3, len(CPU_COLUMNS))))
    body = [report.table(lines), "", "CPU cores busy during each measurement (average):",
            cpu_table, *([""] + notes if notes else [])]
    print("\n" + "\n".join(body))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.txt").write_text("\n".join([*header, "", *body]) + "\n")
    (RESULTS / "latest.json").write_text(json.dumps(
        {"header": header, "results": results, "notes": notes,
         "cpu": {t: {r: vars(u) for r, u in rs.items()} for t, rs in cpu_use.items()}},
        indent=2) + "\n")
    print(f"\nwritten to {RESULTS / 'latest.txt'}")
    return 1 if any("error" in str(v) for r in results.values() for v in r.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
