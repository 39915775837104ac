"""Faults against a real `shardgate dev` cluster: what a reader gets when fragments rot.

Corrupt fragments spread over segments and archives are decoded around (and queued for
healing on their volumes); a segment with fewer than k good fragments cuts the response
short, so a client never mistakes a truncated body for the object. Either holds whether a
volume reads a fragment from the page cache on its event loop or from disk in a thread.
Overwrites, deletes
and failed writes under readers are in test_overwrite_faults.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.corruption import boto_get_fails, codec_of, corrupt, heal_queued, raw_get
from tests.e2e.helpers import (
    archive_path,
    current_manifest,
    volume_counter,
)
from tests.nowait import nowait_reads_work

pytestmark = pytest.mark.e2e
KIB = 1 << 10
MIB = 1 << 20


# --- corrupt fragments ----------------------------------------------------------------


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


def _reads(cluster, where: str) -> float:
    return volume_counter(cluster, "shardgate_archive_reads_total", {"where": where})


def _evict(cluster, manifest) -> None:
    """Drop every archive of the object from the page cache: the next reads go to disk."""
    part = manifest.parts[0]
    for index, volume_id in enumerate(part.placement):
        path = archive_path(cluster, volume_id,
                            part.archive_id(manifest.incarnation, manifest.key, index))
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


@pytest.mark.parametrize("cached", [True, False], ids=["page-cache", "disk"])
def test_rot_is_caught_however_the_volume_reads(cluster, s3x, bucket, cached):
    """Volumes read a fragment on their event loop when the page cache holds it all, else
    in a thread: rotten bytes are found on both paths, for whole reads and sliced ones."""
    if cached and not nowait_reads_work(Path(cluster.config.volume(cluster.volume_ids[0])
                                             .data_dir)):
        pytest.skip("the volumes' filesystem refuses reads without waiting")
    key = f"rot-{'cached' if cached else 'disk'}"
    data = os.urandom(3 * MIB + 4321)
    s3x.put_object(Bucket=bucket, Key=key, Body=data)
    manifest = current_manifest(cluster, bucket, key)
    codec = codec_of(manifest)
    seg = codec.segment_size
    flips = [corrupt(cluster, manifest, codec, 0, 0), corrupt(cluster, manifest, codec, 2, 1)]
    where = "cached" if cached else "thread"
    before = _reads(cluster, where)
    for byte_range in (None, f"bytes={seg + seg // 2 + 3}-{seg + seg // 2 + 5000}",
                       f"bytes=100-{2 * seg + 17}"):
        if not cached:
            _evict(cluster, manifest)
        kwargs = {"Range": byte_range} if byte_range else {}
        got = s3x.get_object(Bucket=bucket, Key=key, **kwargs)["Body"].read()
        lo, hi = (0, len(data) - 1) if byte_range is None else map(
            int, byte_range.removeprefix("bytes=").split("-"))
        assert got == data[lo:hi + 1], byte_range
    assert _reads(cluster, where) > before, f"no archive read ran as {where!r}"
    assert heal_queued(cluster, flips) == []
