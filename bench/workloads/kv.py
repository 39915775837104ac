"""Workload 3: the KV-cache pattern, random 256 KiB-2 MiB ranges over many 16 MiB objects:
closed-loop MB/s at 64 in flight, then open-loop p50/p99 latency at half that rate; and
its read amplification (workload 8)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from concurrent.futures import Future

from bench.context import Ctx, Recorder
from bench.crt import Outcome, closed_loop, open_loop, timed_closed_loop
from bench.stats import percentile
from bench.verify import check_all, check_put, spot_check
from bench.volumes import fragments_sent
from bench.workloads import mbps

SETUP_CONCURRENCY = 16
OPEN_LOAD = 0.5  # of the closed-loop throughput


def key(i: int) -> str:
    return f"kv/{i:04d}"


def setup(ctx: Ctx) -> None:
    plan = ctx.plan

    def puts() -> Iterator[Callable[[], Future[Outcome]]]:
        for i in range(plan.kv_objects):
            src = str(ctx.sources.kv[i % len(ctx.sources.kv)])
            yield lambda i=i, src=src: ctx.crt.put_file(ctx.path(key(i)), src, plan.kv_size)

    for outcome in closed_loop(puts(), SETUP_CONCURRENCY).outcomes:
        check_put(outcome, plan.kv_size)


class Picks:
    """A reproducible stream of (object, start, end) ranges."""

    def __init__(self, ctx: Ctx, seed: int) -> None:
        self.rng = random.Random(seed)
        self.plan = ctx.plan

    def next(self) -> tuple[int, int, int]:
        p = self.plan
        length = self.rng.randint(p.kv_min, p.kv_max)
        start = self.rng.randrange(0, p.kv_size - length + 1)
        return self.rng.randrange(p.kv_objects), start, start + length - 1


def _get(ctx: Ctx, pick: tuple[int, int, int], expected: list[int], at: float = 0.0
         ) -> Future[Outcome]:
    obj, start, end = pick
    expected.append(end - start + 1)
    return ctx.crt.get(ctx.path(key(obj)), [("Range", f"bytes={start}-{end}")], start_at=at)


def run(ctx: Ctx, rec: Recorder, repeat: int, reference: float | None = None) -> None:
    """`reference`: closed-loop MB/s whose half is the open-loop load (default: ours)."""
    plan = ctx.plan
    ctx.once("kv", lambda: setup(ctx))
    picks = Picks(ctx, repeat)
    expected: list[int] = []
    with fragments_sent(ctx.cluster) as fragments:
        batch = timed_closed_loop(lambda i: _get(ctx, picks.next(), expected),
                                  plan.kv_concurrency, plan.kv_closed_seconds)
    check_all(batch.outcomes, expected)
    served = batch.bytes()
    closed = mbps(served, batch.seconds)
    rec.add("3.kv.closed", ctx.name, closed)
    if fragments:
        rec.add("8.amp.kv", ctx.name, fragments[0] / served, fragment_bytes=fragments[0],
                served_bytes=served)
    load = OPEN_LOAD * (reference or closed)  # MB/s
    mean_size = (plan.kv_min + plan.kv_max) / 2
    rate = load * 1e6 / mean_size
    expected = []
    batch = open_loop(lambda i, at: _get(ctx, picks.next(), expected, at), rate,
                      plan.kv_open_seconds, seed=repeat)
    check_all(batch.outcomes, expected)
    latencies = [o.seconds * 1e3 for o in batch.outcomes]
    offered = {"offered_mb_s": load, "requests": len(latencies)}
    rec.add("3.kv.open.p50", ctx.name, percentile(latencies, 50), **offered)
    rec.add("3.kv.open.p99", ctx.name, percentile(latencies, 99), **offered)
    obj, start, end = picks.next()
    body = str(ctx.workdir / f"spot-{ctx.name}.bin")
    outcome = ctx.crt.get(ctx.path(key(obj)), [("Range", f"bytes={start}-{end}")],
                          to_file=body).result()
    spot_check(outcome, ctx.source(ctx.sources.kv[obj % len(ctx.sources.kv)]), start, end)

