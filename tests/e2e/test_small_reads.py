"""Small objects read in one round trip: the volumes' `latest` answers carry the fragments
they keep inline, and the gateway decodes from those.

Concurrent GETs ask each volume for the rows of every key queued meanwhile in one request.

What must hold however the fragments come: the bytes served are the bytes stored. A
fragment that rots in a volume's SQLite is decoded around (a stream from another volume
stands in) and queued for healing; with more than m of them rotten the GET fails, it
never answers other bytes; a volume killed between the PUT and the GET costs nothing.
"""

from __future__ import annotations

import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.e2e.conftest import USERS, own_cluster
from tests.e2e.corruption import boto_get_fails
from tests.e2e.helpers import current_manifest, incarnation, placement, volume_json, volume_requests

pytestmark = pytest.mark.e2e
KIB = 1 << 10
INLINE_LIMIT = 128 * KIB
ARCHIVE_GET = "GET /archives/{archive_id}"  # [gateway] inline_threshold's default


def index_path(cluster, volume_id: str) -> Path:
    return Path(cluster.config.volume(volume_id).data_dir) / "index.sqlite"


def rot_inline(cluster, volume_id: str, archive_id: str) -> bytes:
    """Flip 16 bytes in the middle of an inline archive, in the volume's own SQLite (the
    volume keeps running; WAL lets a second writer in). Returns the original bytes."""
    with sqlite3.connect(index_path(cluster, volume_id), timeout=30) as conn:
        (data,) = conn.execute("SELECT data FROM inline_archives WHERE archive_id=?",
                               (archive_id,)).fetchone()
        data = bytes(data)
        at = len(data) // 2
        rotten = data[:at] + bytes(b ^ 0xFF for b in data[at:at + 16]) + data[at + 16:]
        conn.execute("UPDATE inline_archives SET data=? WHERE archive_id=?",
                     (rotten, archive_id))
    return data


def inline_answer(cluster, volume_id: str, bucket: str, key: str) -> dict:
    inc = incarnation(cluster, bucket)
    rows = volume_json(cluster, volume_id, f"/objects/latest?incarnation={quote(inc)}"
                                           f"&key={quote(key)}&inline=1")["versions"]
    return rows[0].get("inline", {})


def test_a_small_get_opens_no_archive(cluster, s3, bucket):
    data = os.urandom(4 * KIB)
    s3.put_object(Bucket=bucket, Key="one-trip", Body=data)
    big = os.urandom(INLINE_LIMIT)
    s3.put_object(Bucket=bucket, Key="big", Body=big)
    before = volume_requests(cluster, ARCHIVE_GET, None)
    for _ in range(5):
        assert s3.get_object(Bucket=bucket, Key="one-trip")["Body"].read() == data
    assert volume_requests(cluster, ARCHIVE_GET, None) == before
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == big
    # a stored archive is streamed, k of them
    assert volume_requests(cluster, ARCHIVE_GET, None) >= before + 4


@pytest.mark.parametrize("size", [0, 1, 4 * KIB, INLINE_LIMIT - 1, INLINE_LIMIT])
def test_small_objects_round_trip(cluster, s3, bucket, size):
    data = os.urandom(size)
    s3.put_object(Bucket=bucket, Key="k", Body=data)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == data
    if size:
        last = size - 1
        got = s3.get_object(Bucket=bucket, Key="k", Range=f"bytes={size // 3}-{last}")
        assert got["Body"].read() == data[size // 3:]
    holder = placement(cluster, bucket, "k")[0]
    carried = inline_answer(cluster, holder, bucket, "k")
    manifest = current_manifest(cluster, bucket, "k")
    if size < INLINE_LIMIT:
        assert manifest.parts[0].inline
        assert list(carried) == [manifest.parts[0].archive_id(manifest.incarnation, "k", 0)]
    else:
        assert not manifest.parts[0].inline and carried == {}


def test_overwrite_reads_the_new_version(cluster, s3, bucket):
    for n in range(5):
        data = os.urandom(3000 + n)
        s3.put_object(Bucket=bucket, Key="k", Body=data)
        assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == data


@pytest.fixture(scope="module")
def unhealed(tmp_path_factory):
    """A cluster whose healer makes one round at start and none after: what rots stays
    rotten (and queued) until the test puts it back."""
    with own_cluster(tmp_path_factory, "unhealed", ("heal_interval_seconds=3600",)) as dev:
        yield dev


def test_rotten_inline_fragments_are_decoded_around_and_queued(unhealed):
    cluster, s3, bucket = unhealed, unhealed.client(*USERS["alice"]), "rot"
    s3.create_bucket(Bucket=bucket)
    data = os.urandom(10 * KIB)
    s3.put_object(Bucket=bucket, Key="rot", Body=data)
    manifest = current_manifest(cluster, bucket, "rot")
    part = manifest.parts[0]
    assert part.inline and None not in part.placement
    # Data fragments 0 and 2 (read first, from the latest answers) rot: m = 2 of them.
    rotten = {i: part.archive_id(manifest.incarnation, "rot", i) for i in (0, 2)}
    originals = {i: rot_inline(cluster, part.placement[i], a) for i, a in rotten.items()}
    for _ in range(3):
        assert s3.get_object(Bucket=bucket, Key="rot")["Body"].read() == data
    # Each rotten fragment is in its volume's heal queue, as a checksum failure.
    for i, archive in rotten.items():
        entries = volume_json(cluster, part.placement[i], "/heal")["entries"]
        assert any(e["archive_id"] == archive and "checksum" in (e["reason"] or "")
                   for e in entries), entries
    # A third rotten fragment leaves fewer than k good ones: the GET fails, never lies.
    third = part.archive_id(manifest.incarnation, "rot", 4)
    rot_inline(cluster, part.placement[4], third)
    try:
        assert boto_get_fails(s3, Bucket=bucket, Key="rot") == "503"
    finally:
        for i, archive in rotten.items():
            with sqlite3.connect(index_path(cluster, part.placement[i]), timeout=30) as conn:
                conn.execute("UPDATE inline_archives SET data=? WHERE archive_id=?",
                             (originals[i], archive))


def test_data_volume_killed_after_the_put(cluster, s3, bucket):
    data = os.urandom(5000)
    s3.put_object(Bucket=bucket, Key="down", Body=data)
    first = placement(cluster, bucket, "down")[0]
    cluster.kill_volume(first)
    try:
        for _ in range(3):
            assert s3.get_object(Bucket=bucket, Key="down")["Body"].read() == data
    finally:
        cluster.restart_volume(first)


def test_concurrent_gets_share_latest_requests_and_survive_a_kill(cluster, s3, bucket):
    objects = {f"many/{i}": os.urandom(2000 + i) for i in range(24)}
    for key, data in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=data)

    def read_all(rounds: int) -> None:
        for _ in range(rounds):
            for key, data in objects.items():
                assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data

    batched = volume_requests(cluster, "POST /objects/latest")
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(read_all, [2] * 16))
    assert volume_requests(cluster, "POST /objects/latest") > batched
    # A volume killed while batches are on their way: the GETs decide from the others.
    victim = placement(cluster, bucket, "many/0")[0]
    with ThreadPoolExecutor(16) as pool:
        running = [pool.submit(read_all, 3) for _ in range(16)]
        time.sleep(0.5)
        cluster.kill_volume(victim)
        try:
            for future in running:
                future.result()
        finally:
            cluster.restart_volume(victim)
