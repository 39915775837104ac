"""Faults against a real `shardgate dev` cluster: a key overwritten or deleted under its
readers, and an overwrite that fails.

- Concurrent overwrites never make a key unreadable or serve a mix of versions.
- Readers streaming a version complete byte-exact while it is overwritten, then deleted
  (superseded archives are retired, not freed, for `[durability] grace_seconds`).
- An overwrite that cannot reach the write quorum fails with 503 and leaves the old
  version readable; one that misses m volumes succeeds and stays current after they
  return.

`SHARDGATE_HEAVY=1` runs the streaming-readers test at the size of the original report
(a 1 GiB multipart object, 20 readers) instead of 64 MiB and 10 readers.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.conftest import USERS
from tests.e2e.helpers import (
    archive_path,
    current_manifest,
    placement,
    status_of,
    wait_until_only,
)

pytestmark = pytest.mark.e2e
KIB = 1 << 10
MIB = 1 << 20
HEAVY = os.environ.get("SHARDGATE_HEAVY") == "1"


# --- concurrent overwrites ------------------------------------------------------------

DIGEST = 32


def tagged_body(writer: int, seq: int, size: int) -> bytes:
    """`w<writer>-s<seq>|` + random filler + SHA-256 of all before it: a body mixed from
    two writes fails the hash."""
    head = f"w{writer:02d}-s{seq:08d}|".encode()
    payload = head + os.urandom(size - len(head) - DIGEST)
    return payload + hashlib.sha256(payload).digest()


def check_body(body: bytes, size: int, started: list[int]) -> str | None:
    """None if `body` is exactly one of the bodies written, else what is wrong."""
    if len(body) != size:
        return f"{len(body)} bytes, not {size}"
    payload, digest = body[:-DIGEST], body[-DIGEST:]
    if hashlib.sha256(payload).digest() != digest:
        return f"mixed or damaged body (starts {payload[:16]!r})"
    writer, seq = int(payload[1:3]), int(payload[5:13])
    if writer >= len(started) or seq > started[writer]:
        return f"body w{writer} s{seq} was never written"
    return None


@pytest.mark.parametrize("size", [4 * KIB, 3 * MIB], ids=["4KiB", "3MiB"])
def test_concurrent_overwrites_never_make_the_key_unreadable(cluster, bucket, size):
    key = f"hot-{size}"
    writers, readers, seconds = 8, 8, 10.0
    clients = [cluster.client(*USERS["alice"], retries={"total_max_attempts": 1},
                              read_timeout=60) for _ in range(writers + readers)]
    first = tagged_body(0, 0, size)
    clients[0].put_object(Bucket=bucket, Key=key, Body=first)
    started = [0] * writers  # highest sequence number each writer has begun to PUT
    errors: list[str] = []
    puts = [0] * writers
    gets = [0] * readers
    stop = threading.Event()

    def write(n: int) -> None:
        client = clients[n]
        while not stop.is_set():
            started[n] += 1
            body = tagged_body(n, started[n], size)
            try:
                client.put_object(Bucket=bucket, Key=key, Body=body)
                puts[n] += 1
            except Exception as exc:  # noqa: BLE001 - every failure is a finding
                errors.append(f"PUT by writer {n}: {exc!r}")

    def read(n: int) -> None:
        client = clients[writers + n]
        while not stop.is_set():
            try:
                body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            except Exception as exc:  # noqa: BLE001 - every failure is a finding
                errors.append(f"GET by reader {n}: {exc!r}")
                continue
            gets[n] += 1
            problem = check_body(body, size, started)
            if problem:
                errors.append(f"GET by reader {n}: {problem}")

    with ThreadPoolExecutor(writers + readers) as pool:
        futures = [pool.submit(write, n) for n in range(writers)]
        futures += [pool.submit(read, n) for n in range(readers)]
        time.sleep(seconds)
        stop.set()
        for future in futures:
            future.result()
    assert errors == [], f"{len(errors)} failures, first: {errors[:5]}"
    assert all(puts) and all(gets), (puts, gets)
    last = clients[0].get_object(Bucket=bucket, Key=key)["Body"].read()
    assert check_body(last, size, started) is None


# --- readers across overwrite and delete -------------------------------------------


def test_streaming_readers_survive_overwrite_and_delete(cluster, s3x, bucket):
    # SHARDGATE_HEAVY=1: the size of the original report, 1 GiB read by 20 clients.
    size, part_size, readers = (1 << 30, 64 * MIB, 20) if HEAVY else (64 * MIB, 8 * MIB, 10)
    key = "streamed"
    blocks = [os.urandom(part_size) for _ in range(4)]
    digest = hashlib.sha256()
    upload = s3x.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = []
    for number in range(1, size // part_size + 1):
        body = number.to_bytes(8, "big") + blocks[number % len(blocks)][8:]
        digest.update(body)
        etag = s3x.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number,
                               Body=body)["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    s3x.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload,
                                  MultipartUpload={"Parts": parts})
    del blocks
    expected = digest.hexdigest()
    original = current_manifest(cluster, bucket, key)
    wait_until_only(cluster, bucket, key, original.version_id)

    chunk, pause = 256 * KIB, 0.002
    overwrite_at, delete_at = 2 * chunk, size // 2
    reached = [threading.Semaphore(0), threading.Semaphore(0)]
    go = [threading.Event(), threading.Event()]
    clients = [cluster.client(*USERS["alice"], retries={"total_max_attempts": 1},
                              read_timeout=120) for _ in range(readers)]

    def read(n: int) -> tuple[int, str]:
        body = clients[n].get_object(Bucket=bucket, Key=key)["Body"]
        got, h, stage = 0, hashlib.sha256(), 0
        try:
            while data := body.read(chunk):
                h.update(data)
                got += len(data)
                while stage < 2 and got >= (overwrite_at, delete_at)[stage]:
                    reached[stage].release()  # then wait, mid-stream, for the change
                    assert go[stage].wait(120), "the test never went on"
                    stage += 1
                time.sleep(pause)
        finally:
            for later in range(stage, 2):  # never leave the main thread waiting
                reached[later].release()
        return got, h.hexdigest()

    newer = os.urandom(5 * MIB + 3)
    with ThreadPoolExecutor(readers) as pool:
        futures = [pool.submit(read, n) for n in range(readers)]
        for _ in range(readers):
            assert reached[0].acquire(timeout=120)
        s3x.put_object(Bucket=bucket, Key=key, Body=newer)
        assert s3x.get_object(Bucket=bucket, Key=key)["Body"].read() == newer
        wait_until_only(cluster, bucket, key, current_manifest(cluster, bucket, key).version_id)
        go[0].set()
        for _ in range(readers):
            assert reached[1].acquire(timeout=300)
        s3x.delete_object(Bucket=bucket, Key=key)
        assert status_of(lambda: s3x.head_object(Bucket=bucket, Key=key)) == 404
        tombstone = current_manifest(cluster, bucket, key)
        assert tombstone.deleted
        wait_until_only(cluster, bucket, key, tombstone.version_id)
        go[1].set()
        results = [future.result() for future in futures]
    for n, (got, hexdigest) in enumerate(results):
        assert got == size, f"reader {n} got {got} of {size} bytes"
        assert hexdigest == expected, f"reader {n} read other bytes than the original"
    # The superseded archives were retired, not freed: still on disk within the grace.
    part = original.parts[-1]
    for index, holder in enumerate(part.placement):
        assert holder is not None
        assert archive_path(cluster, holder,
                            part.archive_id(original.incarnation, key, index)).exists()


# --- overwrites with volumes down --------------------------------------------------


def test_failed_overwrite_keeps_the_old_version(cluster, s3x, bucket):
    key = "survivor"
    v1 = os.urandom(3 * MIB + 7)
    s3x.put_object(Bucket=bucket, Key=key, Body=v1)
    holders = placement(cluster, bucket, key)
    k, m = cluster.config.erasure.k, cluster.config.erasure.m
    assert len(holders) == k + m

    # More than m down (a data holder among them): the overwrite cannot reach its quorum.
    down = [holders[0], holders[3], holders[5]]
    try:
        for vid in down:
            cluster.kill_volume(vid)
        assert status_of(lambda: s3x.put_object(Bucket=bucket, Key=key,
                                                Body=os.urandom(3 * MIB + 9))) == 503
    finally:
        for vid in down:
            cluster.restart_volume(vid)
    assert s3x.get_object(Bucket=bucket, Key=key)["Body"].read() == v1
    assert s3x.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(v1)

    # Exactly m down: the overwrite succeeds and stays current once they are back.
    down = [holders[1], holders[4]]
    v2 = os.urandom(2 * MIB + 11)
    try:
        for vid in down:
            cluster.kill_volume(vid)
        s3x.put_object(Bucket=bucket, Key=key, Body=v2)
        assert s3x.get_object(Bucket=bucket, Key=key)["Body"].read() == v2
    finally:
        for vid in down:
            cluster.restart_volume(vid)
    for _ in range(3):  # whichever volumes the gateway asks first
        assert s3x.get_object(Bucket=bucket, Key=key)["Body"].read() == v2
    assert s3x.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(v2)
