"""Workload 2: the CRT access pattern, 8 MiB ranged GETs with If-Match, 8/32/64 in flight;
and its read amplification (workload 8) from the volumes' fragment counters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future

from bench.context import Ctx, Recorder
from bench.crt import Outcome, closed_loop
from bench.verify import check_all, spot_check
from bench.volumes import fragments_sent
from bench.workloads import mbps
from bench.workloads.single import BIG_KEY, big_etag, put_big


def ranges(size: int, part: int, count: int) -> list[tuple[int, int]]:
    """`count` consecutive `part`-byte ranges (inclusive ends), wrapping round the object."""
    starts = list(range(0, size, part))
    return [(s, min(s + part, size) - 1) for s in (starts[i % len(starts)] for i in range(count))]


def run(ctx: Ctx, rec: Recorder, repeat: int) -> None:
    plan = ctx.plan
    ctx.once("big", lambda: put_big(ctx))
    etag = big_etag(ctx)
    path = ctx.path(BIG_KEY)
    for concurrency in plan.range_concurrency:
        count = max(plan.big // plan.range_size * plan.range_passes, 4 * concurrency)
        spans = ranges(plan.big, plan.range_size, count)

        def requests(spans: list[tuple[int, int]] = spans
                     ) -> Iterator[Callable[[], Future[Outcome]]]:
            for start, end in spans:
                headers = [("Range", f"bytes={start}-{end}"), ("If-Match", etag)]
                yield lambda headers=headers: ctx.crt.get(path, headers)

        row = f"2.ranged.{concurrency}"
        with fragments_sent(ctx.cluster) as fragments:
            batch = closed_loop(requests(), concurrency)
        try:
            check_all(batch.outcomes, [e - s + 1 for s, e in spans])
        except Exception as exc:
            rec.fail(row, ctx.name, repr(exc))
            continue
        served = batch.bytes()
        rec.add(row, ctx.name, mbps(served, batch.seconds))
        if fragments:
            rec.add(f"8.amp.ranged.{concurrency}", ctx.name, fragments[0] / served,
                    fragment_bytes=fragments[0], served_bytes=served)
    start, end = spans[repeat % len(spans)]
    body = str(ctx.workdir / f"spot-{ctx.name}.bin")
    outcome = ctx.crt.get(path, [("Range", f"bytes={start}-{end}"), ("If-Match", etag)],
                          to_file=body).result()
    spot_check(outcome, ctx.source(ctx.sources.big), start, end)
