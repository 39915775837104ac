"""Workload 6: parallel checkpoint write, 16 concurrent multipart uploads (8 MiB parts, 10
parts in flight each, aws cli's default): MB/s, 503 SlowDown count (must be 0), RSS, CPU."""

from __future__ import annotations

import contextlib

from botocore.exceptions import ClientError

from bench.context import BUCKET, Ctx, Recorder
from bench.verify import WrongData, check_put, spot_check
from bench.volumes import gateway_status_count, process_use
from bench.workloads import mbps, use_details


def key(i: int) -> str:
    return f"ckpt/{i:02d}"


def run(ctx: Ctx, rec: Recorder, repeat: int) -> None:
    plan = ctx.plan
    size, src = plan.ckpt_size, ctx.sources.large
    gateway = ctx.cluster.gateway_url if ctx.cluster else None
    before_503 = gateway_status_count(gateway, "503") if gateway else 0.0
    with process_use(ctx.cluster) as use:
        futures = [ctx.crt.multipart_put(ctx.path(key(i)), str(src), size, plan.ckpt_part,
                                         plan.ckpt_connections)
                   for i in range(plan.ckpt_uploads)]
        outcomes = [f.result() for f in futures]
    seconds = max(o.end for o in outcomes) - min(o.start for o in outcomes)
    failed_503 = sum(1 for o in outcomes if o.error and o.status == 503)
    slowdowns = (gateway_status_count(gateway, "503") - before_503) if gateway else failed_503
    rec.add("6.ckpt.503", ctx.name, slowdowns)
    for outcome in outcomes:
        check_put(outcome, size)
    total = size * plan.ckpt_uploads
    rec.add("6.ckpt", ctx.name, mbps(total, seconds), **use_details(use, total))
    head = ctx.boto.head_object(Bucket=BUCKET, Key=key(0))
    if head["ContentLength"] != size:
        raise WrongData(f"{key(0)} is {head['ContentLength']} bytes, expected {size}")
    start = plan.ckpt_part - (1 << 19)  # a range across the first part boundary
    end = start + (1 << 20) - 1
    body = str(ctx.workdir / f"spot-{ctx.name}.bin")
    outcome = ctx.crt.get(ctx.path(key(repeat % plan.ckpt_uploads)),
                          [("Range", f"bytes={start}-{end}")], to_file=body).result()
    spot_check(outcome, ctx.source(src), start, end)
    for i in range(plan.ckpt_uploads):  # 6 GiB of fragments per repeat: free the disk
        with contextlib.suppress(ClientError):
            ctx.boto.delete_object(Bucket=BUCKET, Key=key(i))
