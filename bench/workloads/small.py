"""Workload 4: 4 KiB objects, PUT then GET with 32 in flight (CRT): ops/s, p50, p99; the
disk's fsync/s is measured beside them since a durable small PUT waits on fsyncs. The keys
are workload 7's (new ones each repeat), so that it has fewer to create."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future

from bench.context import Ctx, Recorder
from bench.crt import Batch, Outcome, closed_loop
from bench.stats import percentile
from bench.verify import check, check_put, spot_check

SIZE = 4096


def _record(rec: Recorder, ctx: Ctx, op: str, batch: Batch) -> None:
    latencies = [o.seconds * 1e3 for o in batch.outcomes]
    rec.add(f"4.small.{op}", ctx.name, len(batch.outcomes) / batch.seconds)
    rec.add(f"4.small.{op}.p50", ctx.name, percentile(latencies, 50))
    rec.add(f"4.small.{op}.p99", ctx.name, percentile(latencies, 99))


def run(ctx: Ctx, rec: Recorder, repeat: int) -> None:
    plan, crt = ctx.plan, ctx.crt
    first = repeat * plan.small_ops
    indexes = range(first, first + plan.small_ops)
    keys = [ctx.path(ctx.list_key(i)) for i in indexes]
    src = str(ctx.sources.small)

    def puts() -> Iterator[Callable[[], Future[Outcome]]]:
        for k in keys:
            yield lambda k=k: crt.put_file(k, src, SIZE)

    def gets() -> Iterator[Callable[[], Future[Outcome]]]:
        for k in keys:
            yield lambda k=k: crt.get(k)

    batch = closed_loop(puts(), plan.small_concurrency)
    for outcome in batch.outcomes:
        check_put(outcome, SIZE)
    ctx.listed.update(indexes)
    _record(rec, ctx, "put", batch)
    batch = closed_loop(gets(), plan.small_concurrency)
    for outcome in batch.outcomes:
        check(outcome, SIZE, (200,))
    _record(rec, ctx, "get", batch)
    body = str(ctx.workdir / f"spot-{ctx.name}.bin")
    spot_check(crt.get(keys[repeat % len(keys)], to_file=body).result(),
               ctx.source(ctx.sources.small), 0, SIZE - 1)
