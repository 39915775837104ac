"""A replaced disk: a volume restarted on an empty data directory under its old id.

It must count for nothing while it is empty (its "no such version" could bring back a
deleted object or an older version), and it is rebuilt completely with no command.
Two other volumes missed the last writes, so those writes lived on exactly the write
quorum, the wiped volume included: with 4+2 their data is gone (three losses), and the
test checks they are never replaced by the older version, while a delete made then (a
row, copied on every volume) stays deleted.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import USERS, own_cluster
from tests.e2e.helpers import archive_path, incarnation, volume_json
from tests.e2e.test_heal_leases import healed_fragments
from tests.e2e.test_healing import assert_fully_redundant

pytestmark = pytest.mark.e2e
MIB = 1 << 20
LOST_ROWS = 8


@pytest.fixture(scope="module")
def rcluster(tmp_path_factory: pytest.TempPathFactory):
    with own_cluster(tmp_path_factory, "rebuild", ("heal_interval_seconds=1",)) as cluster:
        yield cluster


def outcome(s3, bucket: str, key: str) -> bytes | str:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        return exc.response["Error"]["Code"]


def test_wiped_volume_counts_for_nothing_until_rebuilt(rcluster):
    s3 = rcluster.client(*USERS["alice"], retries={"total_max_attempts": 1})
    s3.create_bucket(Bucket="rebuild")
    old, new, gone = os.urandom(2 * MIB + 1), os.urandom(MIB + 3), os.urandom(5000)
    bodies = {f"many/{n:02d}": os.urandom(3000 + 1000 * n) for n in range(20)}
    s3.put_object(Bucket="rebuild", Key="over", Body=old)
    s3.put_object(Bucket="rebuild", Key="gone", Body=gone)
    for key, body in bodies.items():
        s3.put_object(Bucket="rebuild", Key=key, Body=body)
    wiped, behind = "v1", ["v2", "v3"]
    for vid in behind:  # these two miss the last writes
        rcluster.kill_volume(vid)
    time.sleep(1.2)
    s3.put_object(Bucket="rebuild", Key="over", Body=new)
    s3.delete_object(Bucket="rebuild", Key="gone")
    inc = incarnation(rcluster, "rebuild")  # (read from v1: before it is wiped)
    rcluster.kill_volume(wiped)
    shutil.rmtree(Path(rcluster.config.volume(wiped).data_dir))
    for vid in [wiped, *behind]:
        rcluster.restart_volume(vid)
    health = volume_json(rcluster, wiped, "/health")
    assert health["rebuilding"] is True
    answer = volume_json(rcluster, wiped, f"/objects/latest?incarnation={inc}&key=over")
    assert answer["rebuilding"] is True  # whatever it holds yet, its answer does not count
    # While it rebuilds (and v2, v3 heal), nothing stale and nothing resurrected.
    deadline = time.monotonic() + 120
    while volume_json(rcluster, wiped, "/health")["rebuilding"]:
        assert time.monotonic() < deadline, "rebuild did not finish"
        assert outcome(s3, "rebuild", "over") != old
        assert outcome(s3, "rebuild", "gone") in ("NoSuchKey", "ServiceUnavailable")
        try:
            listed = [o["Key"] for o in s3.list_objects_v2(Bucket="rebuild").get("Contents", [])]
            assert "gone" not in listed
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "ServiceUnavailable"
        time.sleep(0.2)
    # Rebuilt: the wiped volume holds everything again, verified frame by frame.
    for key in list(bodies)[::4]:
        assert_fully_redundant(rcluster, "rebuild", key)
    # the lost overwrite: never the older version, on any volume's say
    assert outcome(s3, "rebuild", "over") == "ServiceUnavailable"
    for vid in rcluster.volume_ids:
        rows = volume_json(rcluster, vid, f"/objects/latest?incarnation={inc}&key=over")
        assert rows["versions"][0]["durable"], vid
    # and with two other volumes gone, everything reads from the rebuilt one's share
    for vid in ["v4", "v5"]:
        rcluster.kill_volume(vid)
    try:
        time.sleep(1.2)
        assert outcome(s3, "rebuild", "gone") == "NoSuchKey"
        for key, body in bodies.items():
            assert outcome(s3, "rebuild", key) == body
    finally:
        for vid in ["v4", "v5"]:
            rcluster.restart_volume(vid)


@pytest.fixture(scope="module")
def ccluster(tmp_path_factory: pytest.TempPathFactory):
    with own_cluster(tmp_path_factory, "compare", ("heal_interval_seconds=1",
                                                   "compare_interval_seconds=2")) as cluster:
        yield cluster


def test_a_row_lost_without_a_heal_entry_is_found_by_comparison(ccluster):
    """A volume that lost rows (and their fragments) with no heal entry anywhere: the
    healers' periodic index comparison across the placement finds and heals them, with
    two gateways comparing, each fragment once (under the version's heal lease)."""
    s3 = ccluster.client(*USERS["alice"], retries={"total_max_attempts": 1})
    s3.create_bucket(Bucket="compare")
    bodies = {f"k{n}": os.urandom(MIB + 77 + n) for n in range(LOST_ROWS)}
    for key, body in bodies.items():
        s3.put_object(Bucket="compare", Key=key, Body=body)
    inc = incarnation(ccluster, "compare")
    second = ccluster.second_gateway()
    gateways = (ccluster.endpoint, second)
    time.sleep(1.0)  # the durable notices land
    victim = "v2"
    ccluster.kill_volume(victim)
    before = sum(healed_fragments(ccluster, g) for g in gateways)
    index = Path(ccluster.config.volume(victim).data_dir) / "index.sqlite"
    conn = sqlite3.connect(index)
    try:
        ids = [r[0] for r in conn.execute("SELECT id FROM objects WHERE key LIKE 'k%'")]
        assert len(ids) == LOST_ROWS
        for object_id in ids:
            for (archive,) in conn.execute("SELECT archive_id FROM object_archives"
                                           " WHERE object_id=?", (object_id,)).fetchall():
                archive_path(ccluster, victim, archive).unlink()
            conn.execute("DELETE FROM object_archives WHERE object_id=?", (object_id,))
            conn.execute("DELETE FROM objects WHERE id=?", (object_id,))
        conn.commit()
    finally:
        conn.close()
    ccluster.restart_volume(victim)

    def rows(key: str) -> list:
        return volume_json(ccluster, victim,
                           f"/objects/latest?incarnation={inc}&key={key}")["versions"]

    assert rows("k0") == []
    deadline = time.monotonic() + 60
    while not all(rows(key) for key in bodies):
        assert time.monotonic() < deadline, "the comparison did not restore the rows"
        time.sleep(0.5)
    for key, body in bodies.items():
        assert_fully_redundant(ccluster, "compare", key)
        assert outcome(s3, "compare", key) == body
    healed = sum(healed_fragments(ccluster, g) for g in gateways) - before
    assert healed == LOST_ROWS
