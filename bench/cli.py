"""`shardgate bench`: run the workloads against a cluster and its ceilings, print the table,
write the JSON.

    shardgate bench [--quick] [--repeat N] [--only 1,2,...] [--server hypercorn|granian]
    shardgate bench --endpoint URL --access-key KEY --secret-key SECRET   (no ceilings)

Without --endpoint it starts its own `shardgate dev` (EC 4+2, 6 volumes) and, beside it,
the ceilings: the zero-work S3-shaped server (bench/s3shape.py via bench/limits.py) on the
fastest stack available (Granian if importable), and the one-hop and two-hop limits of the
stack the gateway uses. Each workload is measured on every target in turn, repeat after
repeat, so noise weighs on every column alike. Results: stdout, bench/results/<UTC
time>.json, latest.json and latest.txt (git-ignored).

workloads: 1 single-stream PUT/GET, 2 ranged GETs with If-Match, 3 KV-cache ranges (closed
and open loop), 4 small objects, 5 hot-object fan-in, 6 parallel multipart checkpoint, 7
ListObjectsV2; 8 (read amplification) comes with 2 and 3, 9 (RSS, CPU) with 1, 5 and 6.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import clients, disk, report, servers
from bench.context import BUCKET, Ctx, Plan, Recorder, Sources
from bench.crt import Crt
from bench.stats import Summary
from bench.table import Columns, main_table, process_table
from bench.volumes import Cluster
from bench.workloads import checkpoint, fanin, kv, listing, ranged, single, small
from shardgate.config import SERVERS, role_servers

RESULTS = Path(__file__).resolve().parent / "results"
WORKLOADS: dict[int, Callable[[Ctx, Recorder, int], None]] = {
    1: single.run, 2: ranged.run, 3: kv.run, 4: small.run, 5: fanin.run, 6: checkpoint.run,
    7: listing.run}
DERIVED = {8: (2, 3), 9: (1, 5, 6)}  # figures that come with other workloads
# full-run repeats of the slowest workloads, to keep a full run near half an hour
FULL_SLOW_REPEATS = {3: 2, 4: 2, 5: 1, 6: 2, 7: 2}
SKIP = {(7, "two-hop"): "listings are answered from the forwarder's memory: no second hop"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="shardgate bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, one repeat: a smoke run of a few minutes")
    parser.add_argument("--repeat", type=int, default=None, metavar="N",
                        help="repeats of each workload (default 3; 1 with --quick)")
    parser.add_argument("--only", default="", metavar="W,...",
                        help="workload numbers to run, 1-9 (default: all)")
    parser.add_argument("--server", default=None, choices=SERVERS,
                        help="HTTP server of every process of the dev cluster (default: "
                             "each role's default) and of the hop ceilings (default: the "
                             "gateway's)")
    parser.add_argument("--gateway-workers", type=int, default=1, metavar="N")
    parser.add_argument("--endpoint", default="", metavar="URL",
                        help="measure this S3 endpoint instead (plain http); no ceilings")
    parser.add_argument("--access-key", default=servers.DEFAULT_ACCESS_KEY)
    parser.add_argument("--secret-key", default=servers.DEFAULT_SECRET_KEY)
    parser.add_argument("--no-ceilings", action="store_true",
                        help="measure only the cluster, not the ceilings")
    args = parser.parse_args(argv)
    try:
        wanted = {int(w) for w in args.only.split(",") if w} or set(range(1, 10))
    except ValueError:
        parser.error("--only takes workload numbers, e.g. 1,4")
    if not wanted <= set(range(1, 10)):
        parser.error("workloads are numbered 1 to 9")
    for derived, sources in DERIVED.items():
        if derived in wanted:
            wanted |= set(sources)
    if wanted & {2, 3}:
        wanted.add(8)
    args.workloads = wanted
    return args


def make_plan(args: argparse.Namespace) -> Plan:
    if args.quick:
        return Plan.quick_plan(args.repeat or 1)
    plan = Plan.full(args.repeat or 3)
    return dataclasses.replace(plan, slow_repeats=dict(FULL_SLOW_REPEATS))


def _dev_line(server: str | None) -> str:
    flag = f" --server {server}" if server else ""
    roles = role_servers(server)
    return (f" (`shardgate dev{flag}`: gateway under {roles['gateway_server']}"
            f", volumes under {roles['volume_server']}, EC 4+2, 6 volumes)")


def start_targets(args: argparse.Namespace, workdir: Path, stack: contextlib.ExitStack
                  ) -> tuple[list[tuple[servers.Target, bool, Cluster | None]], Columns]:
    """Start (or name) every target; the first is ours."""
    if args.endpoint:
        target = servers.Target("endpoint", args.endpoint.rstrip("/"), {}, args.access_key,
                                args.secret_key)
        return [(target, True, None)], Columns("endpoint", None, None, None, "", "")
    ours = stack.enter_context(servers.shardgate_dev(workdir, args.gateway_workers,
                                                     args.server))
    cluster = Cluster.from_data_dir(workdir / servers.dev_data_name(args.server))
    targets: list[tuple[servers.Target, bool, Cluster | None]] = [(ours, True, cluster)]
    stack_name = role_servers(args.server)["gateway_server"]  # the hops use the gateway's
    if args.no_ceilings:
        return targets, Columns(ours.name, None, None, None, "", stack_name)
    # The zero-work server runs on the fastest stack there is (Granian); the one-hop and
    # two-hop limits on the gateway's own.
    workers = args.gateway_workers
    s3shape = stack.enter_context(servers.one_hop(workdir, granian=True, workers=workers))
    targets.append((s3shape, False, None))
    one = s3shape
    if stack_name != "granian":
        one = stack.enter_context(servers.one_hop(workdir, granian=False, workers=workers))
        targets.append((one, False, None))
    two = stack.enter_context(servers.two_hop(workdir, granian=stack_name == "granian",
                                              workers=workers))
    targets.append((two, False, None))
    return targets, Columns(ours.name, s3shape.name, one.name, two.name, "granian",
                            stack_name)


def prepare(target: servers.Target, real: bool, cluster: Cluster | None, plan: Plan,
            sources: Sources, workdir: Path, cols: Columns) -> Ctx:
    boto = clients.s3_client(target)
    with contextlib.suppress(Exception):  # exists already, or a ceiling that accepts all
        boto.create_bucket(Bucket=BUCKET)
    crt = Crt(target.endpoint, target.access_key, target.secret_key, max_connections=192)
    roles = {cols.s3shape: "s3shape", cols.one_hop: "one-hop", cols.two_hop: "two-hop"}
    role = "ours" if real else roles.get(target.name, "ceiling")
    return Ctx(target.name, target, real, crt, boto, plan, sources, workdir, cluster, role)


def header(args: argparse.Namespace, plan: Plan, cols: Columns) -> list[str]:
    curl = clients.curl_version()
    slow = ", ".join(f"workload {w}: {min(n, plan.repeats)}" for w, n in plan.slow_repeats.items())
    return [
        f"shardgate bench{' --quick' if plan.quick else ''}, "
        f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}",
        report.machine_line(),
        report.software_line(curl) + f", awscrt {report._version('awscrt')}, granian "
        f"{report._version('granian')}",
        report.source_line(servers.REPO, args.gateway_workers) if not args.endpoint
        else f"endpoint: {args.endpoint}",
        f"ours = {cols.ours}" + ("" if args.endpoint else _dev_line(args.server)),
        "ceilings, same client: s3shape = zero-work S3-shaped server answering from memory "
        f"({cols.s3shape_label}); one-hop / two-hop = trivial app / forwarder -> 6 fragment "
        f"apps under {cols.stack}" if cols.s3shape else "ceilings: not run",
        f"each figure: median [min-max] of {plan.repeats} repeat(s)"
        + (f" (fewer for the slow ones: {slow})" if slow else "")
        + "; ceiling columns: the median; ratios use the medians (curl and crt rows only)",
        "crt = awscrt S3Client, one HTTP request per GET/PUT (multipart only in workload 6), "
        "UNSIGNED-PAYLOAD, no checksums, bodies to /dev/null; MB = 10^6 bytes",
        "open loop (workload 3): Poisson arrivals at 50 % of ours' closed-loop MB/s of the "
        "same repeat, latency from the scheduled time",
    ]


def to_json(head: list[str], plan: Plan, rec: Recorder, cols: Columns) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for row, per_target in rec.values.items():
        rows[row] = {t: {"values": v, "summary": Summary.of(v).as_dict(),
                         "details": rec.details.get(row, {}).get(t, [])}
                     for t, v in per_target.items()}
    return {"header": head, "plan": dataclasses.asdict(plan), "columns": vars(cols),
            "rows": rows, "errors": rec.errors, "notes": rec.notes}


def _store_costs(rec: Recorder, name: str, workdir: Path) -> None:
    """The CPU of storing fragment bytes, through the page cache and around it: the part
    of a PUT's volume CPU that no server code can remove, and what O_DIRECT would take."""
    rec.add("1.store.cached", name, disk.store_cost(workdir, direct=False))
    direct = disk.store_cost(workdir, direct=True)
    if direct is not None:
        rec.add("1.store.direct", name, direct)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = make_plan(args)
    rec = Recorder()
    workdir = Path(tempfile.mkdtemp(prefix="shardgate-bench-"))
    started = time.monotonic()
    try:
        with contextlib.ExitStack() as stack:
            print("writing source files and starting targets...", flush=True)
            sources = Sources.write(workdir, plan)
            targets, cols = start_targets(args, workdir, stack)
            head = header(args, plan, cols)
            print("\n".join(head), flush=True)
            ctxs = [prepare(t, real, cluster, plan, sources, workdir, cols)
                    for t, real, cluster in targets]
            for w in sorted(args.workloads & set(WORKLOADS)):
                for repeat in range(plan.repeats_for(w)):
                    if w == 1:
                        _store_costs(rec, ctxs[0].name, workdir)
                    if w == 4:
                        rec.add("4.fsync", ctxs[0].name, disk.fsyncs_per_second(workdir))
                    for ctx in ctxs:
                        if (w, ctx.role) in SKIP:
                            if repeat == 0:
                                rec.notes.append(f"{ctx.name}: workload {w} not run: "
                                                 f"{SKIP[w, ctx.role]}")
                            continue
                        _run_one(w, ctx, rec, repeat, ctxs[0].name)
                print(f"  workload {w} done at {time.monotonic() - started:.0f} s", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    head.append(f"run time: {(time.monotonic() - started) / 60:.1f} min")
    body = [main_table(plan, rec, cols, args.workloads)]
    processes = process_table(plan, rec, cols.ours)
    if processes:
        body += ["", "workload 9: processes of ours during workloads 1, 5 and 6", processes]
    if rec.notes:
        body += ["", "notes:", *rec.notes]
    text = "\n".join([*head, "", *body]) + "\n"
    print("\n" + text)
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    data = json.dumps(to_json(head, plan, rec, cols), indent=1) + "\n"
    (RESULTS / f"{stamp}.json").write_text(data)
    (RESULTS / "latest.json").write_text(data)
    (RESULTS / "latest.txt").write_text(text)
    print(f"written to {RESULTS / (stamp + '.json')}, latest.json and latest.txt")
    return 1 if rec.errors else 0


def _run_one(w: int, ctx: Ctx, rec: Recorder, repeat: int, ours: str) -> None:
    print(f"  workload {w} repeat {repeat + 1} on {ctx.name}", flush=True)
    try:
        if w == 3 and ctx.name != ours:  # the ceilings get the same offered load as ours
            closed = rec.first("3.kv.closed", ours)
            kv.run(ctx, rec, repeat, closed[repeat] if len(closed) > repeat else None)
        else:
            WORKLOADS[w](ctx, rec, repeat)
    except Exception as exc:  # recorded; the other targets and workloads go on
        rec.fail(f"{w}.run", ctx.name, repr(exc))


if __name__ == "__main__":
    sys.exit(main())
