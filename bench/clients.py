"""The measurements: boto3 and curl driving one S3 endpoint, timed from this process."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from bench.rows import MiB
from bench.servers import Target

REGION = "us-east-1"
S3Client = Any  # boto3 builds its client classes at run time
READ_CHUNK = MiB
CURL_MIN_SIGV4 = (7, 75)


def s3_client(target: Target) -> S3Client:
    """A boto3 S3 client with its own session (sessions are not thread-safe), no retries."""
    session = boto3.session.Session()
    return session.client(
        "s3", endpoint_url=target.endpoint, region_name=REGION,
        aws_access_key_id=target.access_key, aws_secret_access_key=target.secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1},
                      connect_timeout=10, read_timeout=120))


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def put_object(client: S3Client, bucket: str, key: str, path: Path) -> float:
    with open(path, "rb") as body:
        return _timed(lambda: client.put_object(Bucket=bucket, Key=key, Body=body))


def _drain(body: Any, expected: int) -> None:
    got = sum(len(chunk) for chunk in body.iter_chunks(READ_CHUNK))
    if got != expected:
        raise RuntimeError(f"read {got} bytes, expected {expected}")


def get_object(client: S3Client, bucket: str, key: str, size: int) -> float:
    def run() -> None:
        _drain(client.get_object(Bucket=bucket, Key=key)["Body"], size)
    return _timed(run)


def upload_file(client: S3Client, bucket: str, key: str, path: Path) -> float:
    return _timed(lambda: client.upload_file(str(path), bucket, key))


def download_file(client: S3Client, bucket: str, key: str, size: int, dest: Path) -> float:
    try:
        elapsed = _timed(lambda: client.download_file(bucket, key, str(dest)))
        if dest.stat().st_size != size:
            raise RuntimeError(f"downloaded {dest.stat().st_size} bytes, expected {size}")
        return elapsed
    finally:
        dest.unlink(missing_ok=True)


# --- curl --------------------------------------------------------------------------------

def curl_version() -> tuple[int, ...] | None:
    """curl's version as a tuple, or None when curl is not installed."""
    if shutil.which("curl") is None:
        return None
    out = subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout
    match = re.match(r"curl (\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(x) for x in match.groups()) if match else None


def curl_can_sign() -> bool:
    version = curl_version()
    return version is not None and version[:2] >= CURL_MIN_SIGV4


def _curl(target: Target, args: list[str], url_path: str) -> float:
    """Run curl with SigV4 signing; return its own time_total (process start excluded).

    curl before 8.x does not send x-amz-content-sha256, which S3 requires: it is sent
    explicitly (curl signs a header given this way, and uses its value as the payload hash).
    """
    cmd = ["curl", "-sS", "--aws-sigv4", f"aws:amz:{REGION}:s3",
           "--user", f"{target.access_key}:{target.secret_key}",
           "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
           "-w", "%{http_code} %{time_total}", *args, f"{target.endpoint}{url_path}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    status, _, seconds = done.stdout.strip().rpartition("\n")[2].partition(" ")
    if done.returncode != 0 or status not in ("200", "206"):
        raise RuntimeError(f"curl exit {done.returncode}, HTTP {status}: "
                           f"{done.stderr.strip()[:200]}")
    return float(seconds)


def curl_put(target: Target, bucket: str, key: str, path: Path) -> float:
    return _curl(target, ["-T", str(path), "-o", os.devnull], f"/{bucket}/{key}")


def curl_get(target: Target, bucket: str, key: str) -> float:
    return _curl(target, ["-o", os.devnull], f"/{bucket}/{key}")


# --- concurrent phases ---------------------------------------------------------------------

@dataclass
class PhaseResult:
    rate: float  # MB/s or ops/s
    errors: int
    ops: int


def _run_threads(workers: list[Callable[[], tuple[int, int]]]) -> tuple[int, int, float]:
    """Start `workers` together; return (units done, errors, seconds from start to last end)."""
    results: list[tuple[int, int]] = [(0, 0)] * len(workers)
    failures: list[BaseException] = []
    started: list[float] = []
    barrier = threading.Barrier(len(workers), action=lambda: started.append(time.perf_counter()))

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = workers[i]()
        except BaseException as exc:  # reported once all threads ended
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started[0]
    if failures:
        raise failures[0]
    return sum(r[0] for r in results), sum(r[1] for r in results), elapsed


def ranged_gets(clients: list[S3Client], bucket: str, key: str, size: int, part: int,
                passes: int) -> PhaseResult:
    """len(clients) threads read disjoint `part`-byte ranges, `passes` times over the object."""
    ranges = [(start, min(start + part, size) - 1) for start in range(0, size, part)] * passes
    n = len(clients)

    def worker(i: int) -> Callable[[], tuple[int, int]]:
        def run() -> tuple[int, int]:
            total = 0
            for start, end in ranges[i::n]:
                resp = clients[i].get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end}")
                _drain(resp["Body"], end - start + 1)
                total += end - start + 1
            return total, 0
        return run

    total, _, elapsed = _run_threads([worker(i) for i in range(n)])
    return PhaseResult(total / elapsed / 1e6, 0, len(ranges))


def small_puts(clients: list[S3Client], bucket: str, body: bytes, seconds: float,
               max_ops: int) -> tuple[PhaseResult, list[list[str]]]:
    """Each thread PUTs distinct small keys for `seconds` or `max_ops`; returns its keys too."""
    keys: list[list[str]] = [[] for _ in clients]

    def worker(i: int) -> Callable[[], tuple[int, int]]:
        def run() -> tuple[int, int]:
            ops = errors = 0
            deadline = time.perf_counter() + seconds
            while ops < max_ops and time.perf_counter() < deadline:
                key = f"small/{i}/{ops}"
                try:
                    clients[i].put_object(Bucket=bucket, Key=key, Body=body)
                    keys[i].append(key)
                except Exception:
                    errors += 1
                ops += 1
            return ops - errors, errors
        return run

    ops, errors, elapsed = _run_threads([worker(i) for i in range(len(clients))])
    return PhaseResult(ops / elapsed, errors, ops), keys


def small_gets(clients: list[S3Client], bucket: str, keys: list[list[str]], size: int,
               seconds: float, max_ops: int) -> PhaseResult:
    """Each thread GETs (and reads) the small keys it wrote, round robin."""

    def worker(i: int) -> Callable[[], tuple[int, int]]:
        def run() -> tuple[int, int]:
            ops = errors = 0
            mine = keys[i] or [k for ks in keys for k in ks]
            deadline = time.perf_counter() + seconds
            while ops < max_ops and time.perf_counter() < deadline:
                try:
                    _drain(clients[i].get_object(Bucket=bucket, Key=mine[ops % len(mine)])
                           ["Body"], size)
                except Exception:
                    errors += 1
                ops += 1
            return ops - errors, errors
        return run

    ops, errors, elapsed = _run_threads([worker(i) for i in range(len(clients))])
    return PhaseResult(ops / elapsed, errors, ops)
