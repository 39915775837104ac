"""Benchmark shardgate beside the one-hop and two-hop limits of its serving stack.

    python -m bench.run [--quick] [--targets shardgate,one-hop,two-hop] [--only ID,...]
                        [--profile [ROLES]]

All targets run side by side (an idle one costs nothing) and every measurement is taken
for each target in turn, round after round, so that a noisy machine (CPU steal on a VM,
other tenants) weighs on every column alike; each figure is the best of its rounds. The
tables go to stdout and to bench/results/latest.txt (git-ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from bench import clients as c
from bench import cpu, pyspy, report, servers
from bench.rows import (
    OPS_THREADS,
    RANGE_PART,
    RANGE_THREADS,
    MiB,
    Row,
    Settings,
    header,
    rows,
)

RESULTS = Path(__file__).resolve().parent / "results"
BUCKET = "bench"
BIG_KEY = "big"
SMALL_SIZE = 4096
DEFAULT_PROFILE_ROLES = "gateway,forwarder,store"
TARGETS: dict[str, Callable[[Path], AbstractContextManager[servers.Target]]] = {
    "shardgate": servers.shardgate_dev, "one-hop": servers.one_hop, "two-hop": servers.two_hop,
    "one-hop-granian": functools.partial(servers.one_hop, granian=True),
    "two-hop-granian": functools.partial(servers.two_hop, granian=True),
    "gateway-granian": servers.gateway_granian,
    "shardgate-hypercorn": functools.partial(servers.shardgate_dev, server="hypercorn"),
    "shardgate-granian": functools.partial(servers.shardgate_dev, server="granian")}


class Session:
    """Measures one running target; keeps the best figure of each row and its CPU use."""

    def __init__(self, target: servers.Target, settings: Settings, workdir: Path,
                 source: Path, profile_roles: list[str], notes: list[str]) -> None:
        self.target = target
        self.s = settings
        self.workdir = workdir
        self.source = source
        self.profile_pids = {r: p for r, p in target.pids.items() if r in profile_roles}
        self.notes = notes
        self.results: dict[str, float | str] = {}
        self.cpu: dict[str, cpu.CpuUse] = {}
        self.clients = [c.s3_client(target) for _ in range(OPS_THREADS)]
        self.client = self.clients[0]
        self.small_keys: list[list[str]] = []
        self.has_big = False
        self.small_body = os.urandom(SMALL_SIZE)

    def prepare(self) -> None:
        """Create the bucket and open one connection per client."""
        try:
            self.client.create_bucket(Bucket=BUCKET)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise
        for client in self.clients:
            client.put_object(Bucket=BUCKET, Key="warmup", Body=b"x")

    def measure(self, row: Row, round_no: int) -> None:
        """One round of `row`; a failed row is not retried in later rounds."""
        if self.results.get(row.id) == "error":
            return
        print(f"  round {round_no + 1}  {self.target.name:10} {row.id:13}", end=" ", flush=True)
        try:
            with self._profiled(f"{row.id}-r{round_no + 1}"), cpu.measure(self.target.pids) as use:
                value = self._run(row.id)
        except Exception as exc:
            self.results[row.id] = "error"
            self.notes.append(f"{self.target.name} {row.id}: {exc!r}"[:400])
            print(f"error: {exc!r}"[:200], flush=True)
            return
        print(report.cell(value), flush=True)
        best = self.results.get(row.id)
        if not isinstance(best, float) or value > best:
            self.results[row.id] = value
            self.cpu[row.id] = use

    def _profiled(self, label: str) -> AbstractContextManager[Any]:
        if not self.profile_pids:
            return contextlib.nullcontext()
        return pyspy.record(self.profile_pids, RESULTS, f"{self.target.name}-{label}")

    def _rate(self, seconds: float) -> float:
        return self.s.size / seconds / 1e6

    def _run(self, row_id: str) -> float:
        size, src, client = self.s.size, self.source, self.client
        if row_id.startswith("get-") or row_id == "ranged":
            self._ensure_big()
        if row_id == "put-boto3":
            return self._rate(c.put_object(client, BUCKET, BIG_KEY, src))
        if row_id == "put-transfer":
            return self._rate(c.upload_file(client, BUCKET, "big-transfer", src))
        if row_id == "put-curl":
            return self._rate(c.curl_put(self.target, BUCKET, "big-curl", src))
        if row_id == "get-boto3":
            return self._rate(c.get_object(client, BUCKET, BIG_KEY, size))
        if row_id == "get-transfer":
            return self._rate(c.download_file(client, BUCKET, BIG_KEY, size,
                                              self.workdir / "download.bin"))
        if row_id == "get-curl":
            return self._rate(c.curl_get(self.target, BUCKET, BIG_KEY))
        if row_id == "ranged":
            return self._phase(row_id, c.ranged_gets(self.clients[:RANGE_THREADS], BUCKET,
                                                     BIG_KEY, size, RANGE_PART,
                                                     self.s.range_passes))
        if row_id == "small-put":
            result, self.small_keys = c.small_puts(self.clients, BUCKET, self.small_body,
                                                   self.s.ops_seconds, self.s.max_ops)
            return self._phase(row_id, result)
        if row_id == "small-get":
            if not any(self.small_keys):  # small-put was not selected: write a few, untimed
                _, self.small_keys = c.small_puts(self.clients, BUCKET, self.small_body, 60, 20)
            return self._phase(row_id, c.small_gets(self.clients, BUCKET, self.small_keys,
                                                    SMALL_SIZE, self.s.ops_seconds,
                                                    self.s.max_ops))
        raise ValueError(f"unknown row {row_id}")

    def _ensure_big(self) -> None:
        """GETs need the big object; PUT it untimed when no PUT row wrote it."""
        if not self.has_big:
            try:
                self.client.head_object(Bucket=BUCKET, Key=BIG_KEY)
            except ClientError:
                c.put_object(self.client, BUCKET, BIG_KEY, self.source)
            self.has_big = True

    def _phase(self, row_id: str, result: c.PhaseResult) -> float:
        if result.errors:
            self.notes.append(f"{self.target.name} {row_id}: {result.errors} of {result.ops} "
                              "operations failed (not counted)")
        return result.rate


def _write_source(path: Path, size: int) -> None:
    with open(path, "wb") as fh:
        for offset in range(0, size, 8 * MiB):
            fh.write(os.urandom(min(8 * MiB, size - offset)))


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="shardgate-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _tables(selected: list[Row], sessions: dict[str, Session], curl_ok: bool,
            curl: tuple[int, ...] | None) -> list[str]:
    curl_missing = (f"curl {'.'.join(map(str, curl))} cannot sign (needs 7.75+)" if curl
                    else "curl not installed")
    lines, cpu_lines = [], []
    shown = [name for name in TARGETS if name in sessions]
    for row in selected:
        cells = []
        for name in shown:
            session = sessions.get(name)
            if row.id.endswith("-curl") and not curl_ok:
                cells.append(curl_missing)
            else:
                cells.append(report.cell(session.results.get(row.id) if session else None))
            use = session.cpu.get(row.id) if session else None
            value = session.results.get(row.id) if session else None
            if use is not None and isinstance(value, float):
                cpu_lines.append([row.operation, row.client, name,
                                  *use.cost_cells(value, row.unit)])
        lines.append([row.operation, row.client, *cells, row.unit])
    columns = ("operation", "client", *(report.LABELS.get(n, n) for n in shown), "unit")
    return [report.table(lines, columns, frozenset(range(2, 2 + len(shown)))), "",
            cpu.EXPLANATION,
            report.table(cpu_lines, cpu.COLUMNS, frozenset(range(3, len(cpu.COLUMNS))))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="64 MiB objects, 2 s per ops phase, one round (a smoke run)")
    parser.add_argument("--targets", default=",".join(
        t for t in TARGETS if "granian" not in t or importlib.util.find_spec("granian")))
    parser.add_argument("--only", default="", help="comma-separated row ids: "
                        + ", ".join(r.id for r in rows(Settings.full())))
    parser.add_argument("--gateway-workers", type=int, default=1,
                        help="Hypercorn worker processes of the shardgate gateway")
    parser.add_argument("--profile", nargs="?", const=DEFAULT_PROFILE_ROLES, default="",
                        help="py-spy record these roles during each measurement "
                             f"(default {DEFAULT_PROFILE_ROLES}) into bench/results/")
    args = parser.parse_args(argv)
    settings = Settings.quick() if args.quick else Settings.full()
    all_rows = rows(settings)
    wanted = set(args.only.split(",")) if args.only else {r.id for r in all_rows}
    targets = [t for t in args.targets.split(",") if t]
    unknown = [t for t in targets if t not in TARGETS] + sorted(
        wanted - {r.id for r in all_rows})
    if unknown:
        parser.error(f"unknown target or row: {', '.join(unknown)}")
    profile_roles = [r for r in args.profile.split(",") if r]
    if profile_roles and not pyspy.available():
        parser.error("--profile needs py-spy (pip install py-spy)")
    curl, curl_ok = c.curl_version(), c.curl_can_sign()
    selected = [r for r in all_rows if r.id in wanted and (curl_ok or not r.id.endswith("-curl"))]
    head = header(settings, curl, args.quick, profiled=bool(profile_roles),
                  source=report.source_line(servers.REPO, args.gateway_workers))
    factories = dict(TARGETS)
    factories["shardgate"] = functools.partial(servers.shardgate_dev,
                                               gateway_workers=args.gateway_workers)
    print("\n".join(head), flush=True)
    notes: list[str] = []
    sessions: dict[str, Session] = {}
    with _workdir() as workdir, contextlib.ExitStack() as stack:
        source = workdir / "source.bin"
        _write_source(source, settings.size)
        for name in targets:
            try:
                target = stack.enter_context(factories[name](workdir))
                session = Session(target, settings, workdir, source, profile_roles, notes)
                session.prepare()
                sessions[name] = session
            except Exception as exc:
                notes.append(f"{name}: could not be started: {exc!r}"[:400])
                print(f"  {name}: {exc!r}", file=sys.stderr, flush=True)
        for row in selected:
            for round_no in range(settings.rounds):
                for session in sessions.values():
                    session.measure(row, round_no)
    body = [*_tables([r for r in all_rows if r.id in wanted], sessions, curl_ok, curl),
            *([""] + notes if notes else [])]
    print("\n" + "\n".join(body))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.txt").write_text("\n".join([*head, "", *body]) + "\n")
    (RESULTS / "latest.json").write_text(json.dumps(
        {"header": head, "notes": notes,
         "results": {n: s.results for n, s in sessions.items()},
         "cpu": {n: {r: vars(u) for r, u in s.cpu.items()} for n, s in sessions.items()}},
        indent=2) + "\n")
    print(f"\nwritten to {RESULTS / 'latest.txt'}")
    failed = any(v == "error" for s in sessions.values() for v in s.results.values())
    return 1 if failed or len(sessions) < len(targets) else 0


if __name__ == "__main__":
    sys.exit(main())
