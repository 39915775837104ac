"""Ranged GETs cut their edge segments from the data fragments that hold the bytes.

What must hold: a range wanting part of a segment costs only the fragments it touches
(the volumes' own byte counters say so), and still returns exactly the stored bytes when
such a fragment is rotten (decoded from the others, queued for heal) or its volume is
killed. The mechanism: PartSource.cut in gateway/objects/shared_reads.py.
"""

from __future__ import annotations

import os

import pytest

from tests.e2e.conftest import USERS, own_cluster
from tests.e2e.corruption import codec_of, corrupt, heal_queued
from tests.e2e.helpers import current_manifest
from tests.e2e.test_hot_reads import fragment_bytes_sent

pytestmark = pytest.mark.e2e
MIB = 1 << 20
FRAGMENT = 262_228  # one framed fragment of a full 1 MiB segment, 4+2
QUARTER = MIB // 4  # the bytes of a segment each data fragment holds


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    """A cluster of this module's own: the byte counters count these reads alone."""
    with own_cluster(tmp_path_factory, "edges") as dev:
        yield dev


@pytest.fixture(scope="module")
def s3(cluster):
    return cluster.client(*USERS["alice"])


def ranged(s3, bucket: str, key: str, first: int, last: int) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={first}-{last}")["Body"].read()


def test_a_range_costs_the_fragments_it_touches(cluster, s3, bucket):
    data = os.urandom(4 * MIB + 99)
    s3.put_object(Bucket=bucket, Key="obj", Body=data)
    cases = [  # (first, last, fragments of a full segment it touches)
        (300_000, 300_010, 1),  # inside data fragment 1 of segment 0
        (MIB + QUARTER - 5, MIB + QUARTER + 5, 2),  # across fragments 0|1 of segment 1
        (MIB - 100, MIB + 100, 2),  # the last fragment of 0 and the first of 1
        (2 * MIB + 10, 3 * MIB + QUARTER + 10, 4 + 2),  # 4 - 0 of segment 2, 2 of 3
    ]
    for first, last, fragments in cases:
        before = fragment_bytes_sent(cluster)
        assert ranged(s3, bucket, "obj", first, last) == data[first:last + 1]
        sent = fragment_bytes_sent(cluster) - before
        assert sent <= fragments * FRAGMENT, (first, last, sent / FRAGMENT)


def test_a_rotten_edge_fragment_is_decoded_around(cluster, s3, bucket):
    data = os.urandom(3 * MIB)
    s3.put_object(Bucket=bucket, Key="rot", Body=data)
    manifest = current_manifest(cluster, bucket, "rot")
    flip = corrupt(cluster, manifest, codec_of(manifest), 1, 1)  # fragment 1, segment 1
    first = MIB + QUARTER + 1000
    assert ranged(s3, bucket, "rot", first, first + 5000) == data[first:first + 5001]
    assert heal_queued(cluster, [flip]) == []


def test_an_edge_fragment_on_a_killed_volume(cluster, s3, bucket):
    data = os.urandom(3 * MIB)
    s3.put_object(Bucket=bucket, Key="down", Body=data)
    holder = current_manifest(cluster, bucket, "down").parts[0].placement[2]
    cluster.kill_volume(holder)
    try:
        for first in (2 * QUARTER + 7, MIB + 2 * QUARTER + 7, 2 * MIB + 2 * QUARTER - 9):
            assert ranged(s3, bucket, "down", first, first + 20) == data[first:first + 21]
    finally:
        cluster.restart_volume(holder)
