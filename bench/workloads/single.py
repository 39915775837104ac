"""Workload 1: single-stream PUT and GET of one big object with boto3, curl and CRT."""

from __future__ import annotations

import os
import random
import subprocess
from collections.abc import Callable
from pathlib import Path

from bench import clients
from bench.context import BUCKET, Ctx, Recorder
from bench.servers import Target
from bench.verify import WrongData, check, check_put, spot_check
from bench.volumes import process_use
from bench.workloads import mbps, use_details

BIG_KEY = "big"


def curl(target: Target, args: list[str], url_path: str, expect_down: int,
         expect_up: int) -> float:
    """curl with SigV4 and UNSIGNED-PAYLOAD; its own time_total after checking the status
    and the bytes it moved."""
    cmd = ["curl", "-sS", "--aws-sigv4", f"aws:amz:{clients.REGION}:s3",
           "--user", f"{target.access_key}:{target.secret_key}",
           "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
           "-w", "\n%{http_code} %{time_total} %{size_download} %{size_upload}",
           *args, f"{target.endpoint}{url_path}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    status, seconds, down, up = done.stdout.strip().rpartition("\n")[2].split()
    if done.returncode != 0 or status != "200":
        raise WrongData(f"curl exit {done.returncode}, HTTP {status}: {done.stderr[:200]}")
    if int(down) != expect_down or int(up) != expect_up:
        raise WrongData(f"curl moved {down} down / {up} up, expected {expect_down} / "
                        f"{expect_up}")
    return float(seconds)


def put_big(ctx: Ctx) -> None:
    """The object the GETs and ranged GETs read (an untimed CRT PUT)."""
    size = ctx.plan.big
    check_put(ctx.crt.put_file(ctx.path(BIG_KEY), str(ctx.sources.big), size).result(), size)


def big_etag(ctx: Ctx) -> str:
    return ctx.boto.head_object(Bucket=BUCKET, Key=BIG_KEY)["ETag"]


def run(ctx: Ctx, rec: Recorder, repeat: int) -> None:
    size, src = ctx.plan.big, ctx.sources.big
    crt, boto, path = ctx.crt, ctx.boto, ctx.path

    def crt_put() -> float:
        outcome = crt.put_file(path(BIG_KEY), str(src), size).result()
        check_put(outcome, size)
        return outcome.seconds

    def crt_get() -> float:
        outcome = crt.get(path(BIG_KEY)).result()
        check(outcome, size, (200,))
        return outcome.seconds

    steps: list[tuple[str, Callable[[], float]]] = [
        ("1.put.boto3", lambda: clients.put_object(boto, BUCKET, "big-boto3", src)),
        ("1.put.curl", lambda: curl(ctx.target, ["-T", str(src), "-o", os.devnull],
                                    path("big-curl"), 0, size)),
        ("1.put.crt", crt_put),
        ("1.get.boto3", lambda: clients.get_object(boto, BUCKET, BIG_KEY, size)),
        ("1.get.curl", lambda: curl(ctx.target, ["-o", os.devnull], path(BIG_KEY), size, 0)),
        ("1.get.crt", crt_get),
    ]
    for row, step in steps:
        if row.startswith("1.get"):
            ctx.once("big", lambda: put_big(ctx))
        try:
            with process_use(ctx.cluster) as use:
                seconds = step()
        except Exception as exc:  # one failed row must not stop the others
            rec.fail(row, ctx.name, repr(exc))
            continue
        if row == "1.put.crt":
            ctx.made.add("big")
        rec.add(row, ctx.name, mbps(size, seconds), **use_details(use, size))
    spot(ctx, src, size, repeat)


def spot(ctx: Ctx, src: Path, size: int, repeat: int) -> None:
    """One 1 MiB range of the big object, compared byte for byte with the source."""
    if "big" not in ctx.made:
        return
    rng = random.Random(repeat)
    start = rng.randrange(0, max(1, size - (1 << 20)))
    end = min(size, start + (1 << 20)) - 1
    body = str(ctx.workdir / f"spot-{ctx.name}.bin")
    outcome = ctx.crt.get(ctx.path(BIG_KEY), [("Range", f"bytes={start}-{end}")],
                          to_file=body).result()
    spot_check(outcome, ctx.source(src), start, end)
