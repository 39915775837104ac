"""Hot objects: concurrent GETs of one version in one gateway process share its segments.

What must hold: many readers cost about the fragment bytes of one (the volumes' own
counters say so); every reader gets the stored bytes when a volume dies or a fragment
rots in the middle of a shared read; and sharing never serves a stale version: a GET
that starts after an overwrite's 200, through another gateway process than the
writer's, while other readers keep the old version's segments hot, returns the new
bytes. The mechanism: gateway/objects/shared_reads.py.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.conftest import USERS, own_cluster
from tests.e2e.corruption import codec_of, corrupt, heal_queued
from tests.e2e.helpers import current_manifest, volume_counter

pytestmark = pytest.mark.e2e
MIB = 1 << 20
READERS = 20


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    """A cluster of this module's own: the volumes' byte counters count these reads alone
    (no other module's healing reads archives meanwhile)."""
    with own_cluster(tmp_path_factory, "hot") as dev:
        yield dev


@pytest.fixture(scope="module")
def s3(cluster):
    return cluster.client(*USERS["alice"], max_pool_connections=READERS + 4)


def fragment_bytes_sent(cluster) -> float:
    """Bytes of fragment archives the volumes served, by their own counters."""
    return volume_counter(cluster, "shardgate_fragment_sent_bytes_total", {})


def read_all(s3, bucket: str, key: str, readers: int) -> list[bytes]:
    start = threading.Barrier(readers)

    def one(_: int) -> bytes:
        start.wait()
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    with ThreadPoolExecutor(readers) as pool:
        return list(pool.map(one, range(readers)))


def test_many_readers_cost_about_one(cluster, s3, bucket):
    data = os.urandom(12 * MIB + 12345)
    s3.put_object(Bucket=bucket, Key="hot", Body=data)
    before = fragment_bytes_sent(cluster)
    assert s3.get_object(Bucket=bucket, Key="hot")["Body"].read() == data
    one = fragment_bytes_sent(cluster) - before
    assert one >= len(data)  # k data fragments of every segment, framed
    before = fragment_bytes_sent(cluster)
    bodies = read_all(s3, bucket, "hot", READERS)
    many = fragment_bytes_sent(cluster) - before
    assert all(body == data for body in bodies)
    assert many <= 2 * one, f"{READERS} readers cost {many / one:.1f}x one reader"


def test_a_volume_killed_during_a_shared_read(cluster, s3, bucket):
    data = os.urandom(24 * MIB)
    s3.put_object(Bucket=bucket, Key="shared", Body=data)
    first = current_manifest(cluster, bucket, "shared").parts[0].placement[0]
    killer = threading.Timer(0.3, cluster.kill_volume, (first,))
    killer.start()
    try:
        bodies = read_all(s3, bucket, "shared", 8)
        assert all(body == data for body in bodies)
    finally:
        killer.join()
        cluster.restart_volume(first)


def test_a_rotten_fragment_under_a_shared_read(cluster, s3, bucket):
    data = os.urandom(6 * MIB)
    s3.put_object(Bucket=bucket, Key="rot", Body=data)
    manifest = current_manifest(cluster, bucket, "rot")
    flips = [corrupt(cluster, manifest, codec_of(manifest), 1, segment) for segment in (2, 4)]
    bodies = read_all(s3, bucket, "rot", 8)
    assert all(body == data for body in bodies)
    assert heal_queued(cluster, flips) == []


def test_no_stale_read_through_another_gateway(cluster, s3, bucket):
    """Readers on gateway B keep the key's current version hot while the writer
    overwrites it through gateway A; each GET started after a PUT's 200 returns it."""
    reader = cluster.client_at(cluster.second_gateway(), *USERS["alice"],
                               max_pool_connections=8)
    size = 3 * MIB + 17
    s3.put_object(Bucket=bucket, Key="moving", Body=os.urandom(size))
    stop = threading.Event()

    def keep_hot() -> int:
        reads = 0
        while not stop.is_set():
            assert len(reader.get_object(Bucket=bucket, Key="moving")["Body"].read()) == size
            reads += 1
        return reads

    with ThreadPoolExecutor(4) as pool:
        background = [pool.submit(keep_hot) for _ in range(4)]
        try:
            for n in range(25):
                data = os.urandom(size)
                etag = s3.put_object(Bucket=bucket, Key="moving", Body=data)["ETag"]
                got = reader.get_object(Bucket=bucket, Key="moving")
                assert got["ETag"] == etag and got["Body"].read() == data, n
                time.sleep(0.05)
        finally:
            stop.set()
        assert all(f.result() > 0 for f in background)
