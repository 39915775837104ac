"""Growing and shrinking a live cluster, on the embedded map and on a real etcd: a 7th
volume added under a client that keeps reading and writing, the fragments moved counted
from the volumes' own archive lists against the minimum, a drain and a remove, and a
rebalancer SIGKILLed in the middle of a move that resumes where it was."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from tests.e2e.cluster import DevCluster, free_port
from tests.e2e.conftest import USERS, write_users
from tests.e2e.etcd import Etcd
from tests.e2e.helpers import status_of
from tests.e2e.rebalance_helpers import (
    Traffic,
    admin,
    archive_lists,
    check_all,
    corrupt_some,
    fill,
    gateway_gauges,
    logs_of,
    moved_fragments,
    process_of,
    requests_served,
    start_volume,
    tombstone_holders,
    wait_moved,
)

pytestmark = pytest.mark.e2e

OBJECTS = 800
MULTIPART = 10
LATEST = ("GET /objects/latest", "POST /objects/latest")


def grow(tmp_path_factory, store: str):
    """A 6-volume dev cluster (on the embedded map or a real etcd) with OBJECTS objects."""
    root = tmp_path_factory.mktemp(f"grow-{store}")
    extra = []
    etcd = None
    if store == "etcd":
        (root / "etcd").mkdir()
        etcd = Etcd(root / "etcd").start()
        extra = ["--etcd", ",".join(etcd.endpoints)]
    dev = DevCluster(root / "data", free_port(), write_users(root / "users.toml"),
                     extra_args=extra).start()
    try:
        s3 = dev.client(*USERS["alice"])
        bucket = f"grow-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        digests = fill(s3, bucket, OBJECTS, MULTIPART)
        yield dev, s3, bucket, digests
    finally:
        dev.stop()
        if etcd is not None:
            etcd.stop()


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    yield from grow(tmp_path_factory, "embedded")


@pytest.fixture(scope="module")
def grown_on_etcd(tmp_path_factory):
    yield from grow(tmp_path_factory, "etcd")


# The add test runs on both map stores; the drain and the killed rebalancer on the
# embedded one (the map store's part in them is the same, and a move takes minutes here).
@pytest.mark.parametrize("where", ["grown", "grown_on_etcd"])
def test_adding_a_volume_under_traffic_moves_about_one_seventh(where, request):
    dev, s3, bucket, digests = request.getfixturevalue(where)
    before = archive_lists(dev)
    total = sum(len(held) for held in before.values())
    url = start_volume(dev, "v7")
    traffic = Traffic(s3, bucket, digests).start()
    try:
        time.sleep(1)
        added = admin(dev, "volume", "add", "v7", "--url", url)
        assert added.returncode == 0, added.stderr
        assert "epoch 2" in added.stdout
        refused = admin(dev, "volume", "add", "v8", "--url", "http://127.0.0.1:1")
        assert refused.returncode == 1 and "still moving" in refused.stderr
        wait_moved(dev)
        time.sleep(1)
    finally:
        traffic.stop()
    assert traffic.failures == [], traffic.failures[:5]
    assert traffic.requests > 50
    after = archive_lists(dev)
    moved = moved_fragments(before, after)
    minimum = total / 7
    print(f"fragments moved {moved}, minimum {minimum:.0f} ({moved / minimum:.2f}x)")
    assert 0.5 * minimum < moved <= 1.3 * minimum
    assert check_all(s3, bucket, digests) == []
    assert check_all(s3, bucket, traffic.written) == []
    status = admin(dev, "rebalance", "status")
    assert status.returncode == 0 and "v7 active" in status.stdout


def test_draining_moves_everything_off_and_removing_changes_nothing_readable(grown):
    dev, s3, bucket, digests = grown
    # Versions deleted by id leave tombstones; the drain carries v3's to its successors.
    versioned = f"tomb-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=versioned)
    s3.put_bucket_versioning(Bucket=versioned, VersioningConfiguration={"Status": "Enabled"})
    deleted = {}
    for i in range(60):
        old = s3.put_object(Bucket=versioned, Key=f"k{i}", Body=b"old %d" % i)["VersionId"]
        s3.put_object(Bucket=versioned, Key=f"k{i}", Body=b"new %d" % i)
        s3.delete_object(Bucket=versioned, Key=f"k{i}", VersionId=old)
        deleted[f"k{i}"] = old
    before = tombstone_holders(dev)
    held_by_v3 = {t for t, holders in before.items() if "v3" in holders}
    assert held_by_v3 and all(len(holders) == 6 for holders in before.values())
    drained = admin(dev, "volume", "drain", "v3")
    assert drained.returncode == 0, drained.stderr
    wait_moved(dev)
    assert archive_lists(dev)["v3"] == set()
    after = tombstone_holders(dev, without={"v3"})
    assert all(len(after[t]) == 6 for t in held_by_v3), {t: after.get(t) for t in held_by_v3}
    refused = admin(dev, "volume", "drain", "v4")  # 6 left in the ring for 4+2
    assert refused.returncode == 1 and "needs at least" in refused.stderr
    removed = admin(dev, "volume", "remove", "v3")
    assert removed.returncode == 0, removed.stderr
    dev.kill_volume("v3")
    assert check_all(s3, bucket, digests) == []
    for key, version in deleted.items():
        assert status_of(lambda k=key, v=version: s3.get_object(
            Bucket=versioned, Key=k, VersionId=v)) == 404
        assert s3.get_object(Bucket=versioned, Key=key)["Body"].read().startswith(b"new")
    # One more volume down still leaves every object readable: nothing relied on v3.
    dev.kill_volume("v5")
    try:
        assert check_all(s3, bucket, dict(list(digests.items())[:300])) == []
    finally:
        dev.restart_volume("v5")


def test_a_rebalancer_killed_in_the_middle_resumes_to_the_same_end(grown):
    dev, s3, bucket, digests = grown
    before = archive_lists(dev)
    total = sum(len(held) for held in before.values())
    url = start_volume(dev, "v8")
    added = admin(dev, "volume", "add", "v8", "--url", url)
    assert added.returncode == 0, added.stderr
    pid = process_of(dev, "rebalancer")
    deadline = time.monotonic() + 120
    while True:  # kill it once it has moved some, but not all
        status = admin(dev, "rebalance", "status").stdout
        if "versions moved" in status and " 0 versions moved" not in status:
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    killed_at = status
    # Any gateway's /-/metrics shows the saved progress, the rebalancer dead or alive.
    gauges = gateway_gauges(dev)
    assert gauges["shardgate_map_epoch"] == 4 and gauges["shardgate_rebalance_moving"] == 1
    assert gauges["shardgate_rebalance_versions_moved"] >= 1
    assert gauges["shardgate_rebalance_rows_to_scan"] >= gauges[
        "shardgate_rebalance_rows_scanned"] > 0
    # Overwrites placed by the new ring while the move waits: the old versions stay only
    # on volumes leaving their keys' placement, and must be left behind, not moved back.
    # Small as they are, a key whose placement moves is written two-phase (staged, its id
    # past both placements' clocks), never in one trip fenced on the new placement alone;
    # about 3 keys in 4 move when an 8th volume joins 7.
    overwritten = list(digests)[-150:]
    stages = requests_served(dev, "PUT /stage/{stage_id}")
    for key in overwritten:
        body = os.urandom(2_000)
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        digests[key] = hashlib.md5(body).hexdigest()
    assert requests_served(dev, "PUT /stage/{stage_id}") >= stages + 6 * 50
    # Deletes the same way: the key is read on both placements before its marker.
    latest = requests_served(dev, *LATEST)
    deleted = overwritten[:20]
    for key in deleted:
        s3.delete_object(Bucket=bucket, Key=key)
        del digests[key]
    assert requests_served(dev, *LATEST) >= latest + 20
    log = open(dev.data / "logs" / "rebalancer.restart.log", "ab")  # noqa: SIM115
    dev.extra.append(subprocess.Popen([sys.executable, "-m", "shardgate", "rebalancer",
                                       "--config", str(dev.data / "cluster.toml")],
                                      stdout=log, stderr=subprocess.STDOUT))
    wait_moved(dev)
    assert "still moving" not in admin(dev, "rebalance", "status").stdout
    assert gateway_gauges(dev)["shardgate_rebalance_moving"] == 0
    after = archive_lists(dev)
    moved = moved_fragments(before, after)
    assert moved <= 1.3 * total / 7, (moved, total, killed_at)
    assert check_all(s3, bucket, digests) == []
    assert all(status_of(lambda k=key: s3.head_object(Bucket=bucket, Key=k)) == 404
               for key in deleted)
    copy = json.loads((dev.data / "map-gateway.json").read_text())
    assert copy["map"]["epoch"] == 4 and copy["map"]["previous"] is None
    restarted = logs_of(dev, "rebalancer.restart")
    assert "resuming the move to epoch 4" in restarted, restarted[-2000:]
    assert "held only by volumes leaving its placement" in restarted, restarted[-2000:]


def test_a_volume_killed_in_the_middle_of_a_drain_loses_nothing(grown):
    """Moves copy fragments, verified: some of v8's are corrupted first (those are
    rebuilt from the others instead). v5, which stays, is SIGKILLed while v8's fragments
    move off; moves that need it wait for it. Afterwards every object still reads with
    two volumes down."""
    dev, s3, bucket, digests = grown
    corrupted = corrupt_some(dev.data / "v8", count=25)
    assert len(corrupted) == 25
    drained = admin(dev, "volume", "drain", "v8")
    assert drained.returncode == 0, drained.stderr
    deadline = time.monotonic() + 120
    while True:
        status = admin(dev, "rebalance", "status").stdout
        if "versions moved" in status and " 0 versions moved" not in status:
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    dev.kill_volume("v5")
    try:
        # every new placement includes v5 (six volumes remain): nothing can finish, and
        # everything still reads with it down
        assert check_all(s3, bucket, dict(list(digests.items())[::11])) == []
        assert gateway_gauges(dev)["shardgate_rebalance_moving"] == 1
    finally:
        dev.restart_volume("v5")
    wait_moved(dev)
    assert archive_lists(dev)["v8"] == set()
    moves = logs_of(dev, "rebalancer.restart")
    assert "rebuilding instead" in moves and "is corrupt" in moves, moves[-3000:]
    assert admin(dev, "volume", "remove", "v8").returncode == 0
    assert check_all(s3, bucket, digests) == []
    # Six volumes left for 4+2: with two of them down, every fragment of the other four
    # must be there and intact for an object to read.
    sample = dict(list(digests.items())[::7])
    for down in (("v1", "v2"), ("v5", "v6")):
        for vid in down:
            dev.kill_volume(vid)
        try:
            assert check_all(s3, bucket, sample) == [], down
        finally:
            for vid in down:
                dev.restart_volume(vid)
