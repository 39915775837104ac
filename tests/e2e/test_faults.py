"""Faults against a real `shardgate dev` cluster: what a reader gets when fragments rot,
when a key is overwritten or deleted under it, and when an overwrite fails.

- Corrupt fragments spread over segments and archives are decoded around (and queued
  for healing on their volumes); a segment with fewer than k good fragments cuts the
  response short, so a client never mistakes a truncated body for the object.
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
import http.client
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    IncompleteReadError,
    ResponseStreamingError,
)
from urllib3.exceptions import ProtocolError

from erasure import Codec
from shardgate.manifest import ObjectManifest
from tests.e2e.conftest import USERS
from tests.e2e.helpers import incarnation, placement, sign, status_of, volume_json

pytestmark = pytest.mark.e2e
KIB = 1 << 10
MIB = 1 << 20
HEAVY = os.environ.get("SHARDGATE_HEAVY") == "1"
PYECLIB_HEADER = 80  # bytes before the payload of every pyeclib fragment


@pytest.fixture(scope="module")
def s3x(cluster):
    """A client that never retries: every failure the gateway gives is seen as it is."""
    return cluster.client(*USERS["alice"], retries={"total_max_attempts": 1},
                          read_timeout=60)


# --- looking at what the volumes hold ------------------------------------------------


def latest_rows(cluster, volume_id: str, bucket: str, key: str) -> list[dict]:
    """The rows a volume lists for the read rule: newest down to its newest durable one."""
    inc = incarnation(cluster, bucket)
    return volume_json(cluster, volume_id,
                       f"/objects/latest?incarnation={quote(inc)}&key={quote(key)}")["versions"]


def current_manifest(cluster, bucket: str, key: str) -> ObjectManifest:
    """The newest manifest any volume of the placement holds for the key."""
    rows = [row for vid in placement(cluster, bucket, key)
            for row in latest_rows(cluster, vid, bucket, key)]
    return ObjectManifest.from_dict(max(rows, key=lambda r: r["version_id"])["manifest"])


def archive_path(cluster, volume_id: str, archive_id: str) -> Path:
    data_dir = Path(cluster.config.volume(volume_id).data_dir)
    return data_dir / "fragments" / archive_id[:2] / archive_id[2:4] / archive_id


def wait_until_only(cluster, bucket: str, key: str, version_id: str,
                    timeout: float = 15) -> None:
    """Wait until every volume of the placement lists just `version_id`, durable: the
    durable notice arrived and the older rows were superseded."""
    deadline = time.monotonic() + timeout
    volumes = placement(cluster, bucket, key)
    while True:
        listed = {vid: [(r["version_id"], r["durable"])
                        for r in latest_rows(cluster, vid, bucket, key)] for vid in volumes}
        if all(rows == [(version_id, True)] for rows in listed.values()):
            return
        assert time.monotonic() < deadline, f"older rows of {key} not superseded: {listed}"
        time.sleep(0.1)


# --- 1. corrupt fragments -------------------------------------------------------------


@dataclass(frozen=True)
class Flip:
    """Bytes flipped in one fragment of one segment: where, and what was there."""

    volume_id: str
    archive_id: str
    segment: int
    path: Path
    offset: int
    original: bytes

    def healed(self) -> bool:
        """The fragment holds its original bytes again (a healer rebuilt it)."""
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            return fh.read(len(self.original)) == self.original


def corrupt(cluster, manifest: ObjectManifest, codec: Codec, index: int,
            segment: int) -> Flip:
    """Flip 16 bytes inside the payload of fragment `index` of `segment` (its CRC32C frame
    then fails)."""
    part = manifest.parts[0]
    volume_id = part.placement[index]
    assert volume_id is not None
    archive = part.archive_id(manifest.incarnation, manifest.key, index)
    path = archive_path(cluster, volume_id, archive)
    layout = codec.layout(part.size)
    assert path.stat().st_size == layout.archive_size
    length = layout.framed_length(segment)
    at = layout.archive_offset(segment) + PYECLIB_HEADER + (length - PYECLIB_HEADER) // 3
    with open(path, "r+b") as fh:
        fh.seek(at)
        original = fh.read(16)
        fh.seek(at)
        fh.write(bytes(b ^ 0xFF for b in original))
        fh.flush()
        os.fsync(fh.fileno())
    return Flip(volume_id, archive, segment, path, at, original)


def codec_of(manifest: ObjectManifest) -> Codec:
    params = manifest.erasure
    assert params is not None
    return Codec(params.k, params.m, params.ec_type, params.segment_size)


def heal_queued(cluster, flips: list[Flip], timeout: float = 15) -> list[Flip]:
    """Poll the holders' heal queues until each flip has been listed there as a checksum
    failure of its segment (or was already healed on disk, which needs an entry first);
    return the flips never seen."""
    missing = list(flips)
    deadline = time.monotonic() + timeout
    while missing and time.monotonic() < deadline:
        listed = set()
        for vid in {flip.volume_id for flip in missing}:
            for entry in volume_json(cluster, vid, "/heal")["entries"]:
                reason = entry["reason"] or ""
                if entry["archive_id"] and "segment" in reason:
                    segment = int(reason.rsplit("segment", 1)[1].split()[0])
                    listed.add((vid, entry["archive_id"], segment))
        missing = [f for f in missing
                   if (f.volume_id, f.archive_id, f.segment) not in listed and not f.healed()]
        time.sleep(0.05)
    return missing


def raw_get(cluster, bucket: str, key: str, byte_range: str | None = None):
    """GET by http.client: (status, Content-Length, body read until the server stopped
    sending, whether the connection was cut). http.client's read(n) answers b"" at an
    early EOF, so a body shorter than Content-Length followed by b"" is a cut connection."""
    url = f"{cluster.endpoint}/{bucket}/{quote(key)}"
    headers = {"Range": byte_range} if byte_range else {}
    signed = sign("GET", url, *USERS["alice"], headers)
    conn = http.client.HTTPConnection("127.0.0.1", cluster.port, timeout=60)
    try:
        conn.request("GET", f"/{bucket}/{quote(key)}", headers=signed)
        resp = conn.getresponse()
        length = int(resp.getheader("Content-Length", "-1"))
        body = bytearray()
        cut = False
        try:
            while chunk := resp.read(64 * KIB):
                body += chunk
        except (ConnectionError, http.client.IncompleteRead) as exc:
            body += getattr(exc, "partial", b"")
            cut = True
        cut = cut or (length >= 0 and len(body) < length)
        return resp.status, length, bytes(body), cut
    finally:
        conn.close()


def boto_get_fails(client, **kwargs) -> str:
    """GET by boto3 that must not succeed: the error seen (a 503 before the headers, or a
    body cut short); fails the test if a body reads cleanly."""
    try:
        resp = client.get_object(**kwargs)
    except ClientError as exc:
        status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
        assert status == 503, exc
        return "503"
    try:
        body = resp["Body"].read()
    except (IncompleteReadError, ResponseStreamingError, ConnectionClosedError,
            ProtocolError) as exc:
        return type(exc).__name__
    pytest.fail(f"GET of an undecodable segment answered {len(body)} bytes cleanly "
                f"(Content-Length {resp['ContentLength']})")


def test_spread_corruption_is_decoded_and_queued_for_heal(cluster, s3x, bucket):
    key = "spread"
    data = os.urandom(6 * MIB + 12345)  # 7 segments of 1 MiB, the last one short
    s3x.put_object(Bucket=bucket, Key=key, Body=data)
    manifest = current_manifest(cluster, bucket, key)
    codec = codec_of(manifest)
    seg = codec.segment_size
    layout = codec.layout(len(data))
    assert layout.num_segments == 7 and (codec.k, codec.m) == (4, 2)
    # index -> corrupted segments. Segment 0 loses data fragment 0 *and* parity 4 (two
    # stand-ins in a row, before any header is sent); every other segment loses one, in
    # data fragments 0 and 3 and parity 4; segment 2 is clean. Each keeps >= k good.
    plan = {0: [0, 3, 6], 3: [1, 4], 4: [0, 5]}
    part = manifest.parts[0]
    # The PUT staged on all six (so the gateway suspects none of them and reads data
    # fragments first, then parity 4, then 5: every flip below is then read and found).
    assert None not in part.placement
    flips = [corrupt(cluster, manifest, codec, index, segment)
             for index, segments in plan.items() for segment in segments]
    for segment in range(layout.num_segments):
        bad = sum(segment in segments for segments in plan.values())
        assert codec.k <= codec.fragment_count - bad

    got = s3x.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert len(got) == len(data)
    assert got == data
    lo, hi = seg // 2, 5 * seg + 777  # from inside segment 0 to inside segment 5
    got = s3x.get_object(Bucket=bucket, Key=key, Range=f"bytes={lo}-{hi}")["Body"].read()
    assert got == data[lo:hi + 1]
    lo, hi = 3 * seg + 5, len(data) - 3  # starts in segment 3 (its data fragment 0 is bad)
    got = s3x.get_object(Bucket=bucket, Key=key, Range=f"bytes={lo}-{hi}")["Body"].read()
    assert got == data[lo:hi + 1]
    status, length, body, cut = raw_get(cluster, bucket, key)
    assert (status, length, cut) == (200, len(data), False)
    assert body == data

    missing = heal_queued(cluster, flips)
    assert missing == [], "checksum failures not queued for heal on their volumes"


def test_undecodable_segment_cuts_the_response(cluster, s3x, bucket):
    key = "undecodable"
    data = os.urandom(6 * MIB + 12345)
    s3x.put_object(Bucket=bucket, Key=key, Body=data)
    manifest = current_manifest(cluster, bucket, key)
    codec = codec_of(manifest)
    seg = codec.segment_size
    broken = 4  # 3 of 6 fragments of segment 4 bad: 3 good < k = 4
    for index in (0, 2, 5):
        corrupt(cluster, manifest, codec, index, broken)

    # Segments before it decode: the answer starts as 200, and must then be cut.
    status, length, body, cut = raw_get(cluster, bucket, key)
    assert (status, length) == (200, len(data))
    assert cut, f"body of {len(body)} bytes ended cleanly"
    assert len(body) < length
    assert len(body) <= broken * seg  # nothing of the broken segment or after it
    assert body == data[:len(body)]
    assert boto_get_fails(s3x, Bucket=bucket, Key=key) != "503"
    # A range ending past it is cut the same way; one starting in it fails before headers.
    status, length, body, cut = raw_get(cluster, bucket, key, f"bytes={seg}-{5 * seg}")
    assert (status, length) == (206, 4 * seg + 1)
    assert cut and len(body) <= 3 * seg and body == data[seg:seg + len(body)]
    assert boto_get_fails(s3x, Bucket=bucket, Key=key, Range=f"bytes={seg}-{5 * seg}") != "503"
    assert boto_get_fails(s3x, Bucket=bucket, Key=key,
                          Range=f"bytes={broken * seg + 10}-{broken * seg + 20}") == "503"
    # Ranges that avoid the segment are still served.
    got = s3x.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{broken * seg - 1}")
    assert got["Body"].read() == data[:broken * seg]
    got = s3x.get_object(Bucket=bucket, Key=key, Range=f"bytes={(broken + 1) * seg}-")
    assert got["Body"].read() == data[(broken + 1) * seg:]


# --- 2. concurrent overwrites ---------------------------------------------------------

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


# --- 3. readers across overwrite and delete -------------------------------------------


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


# --- 4. overwrites with volumes down --------------------------------------------------


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
