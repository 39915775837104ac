"""Workload 5: hot-object fan-in, many concurrent readers of one object: aggregate MB/s and
the fragment bytes the volumes sent for it (their own counters), with peak RSS and CPU.
The readers are aiohttp GETs (bench/aio.py): CRT would hold every body in memory."""

from __future__ import annotations

from bench.aio import concurrent_gets
from bench.context import Ctx, Recorder
from bench.verify import check_all, check_put, spot_check
from bench.volumes import fragments_sent, process_use
from bench.workloads import mbps, use_details

HOT_KEY = "hot"


def setup(ctx: Ctx) -> None:
    size = ctx.plan.fanin_size
    if size > ctx.sources.large.stat().st_size:
        raise ValueError("the large source file is smaller than the fan-in object")
    outcome = ctx.crt.put_file(ctx.path(HOT_KEY), str(ctx.sources.large), size).result()
    check_put(outcome, size)


def run(ctx: Ctx, rec: Recorder, repeat: int) -> None:
    plan = ctx.plan
    size, readers = plan.fanin_size, plan.fanin_readers
    ctx.once("hot", lambda: setup(ctx))
    path = ctx.path(HOT_KEY)

    with fragments_sent(ctx.cluster) as fragments, process_use(ctx.cluster) as use:
        batch = concurrent_gets(ctx.target, path, readers)
    check_all(batch.outcomes, size)
    served = batch.bytes()
    details = use_details(use, served)
    if fragments:
        details.update(fragment_bytes=fragments[0], fragment_bytes_per_object=fragments[0] / size)
    rec.add("5.fanin", ctx.name, mbps(served, batch.seconds), **details)
    if fragments:
        rec.add("5.fanin.fragments", ctx.name, fragments[0] / size)
    start = (repeat * 7919 * 4096) % max(1, size - (1 << 20))
    end = min(size, start + (1 << 20)) - 1
    body = str(ctx.workdir / f"spot-{ctx.name}.bin")
    outcome = ctx.crt.get(path, [("Range", f"bytes={start}-{end}")], to_file=body).result()
    spot_check(outcome, ctx.source(ctx.sources.large), start, end)
