"""Deleting a version by its id under faults: a deleted version never comes back.

- A volume down during the delete keeps the version; when it returns, no read serves
  it (its peers' tombstones outweigh it), and healing removes it there too.
- The gateway killed with the tombstones written but the rows not yet dropped: reads
  already treat the version as deleted, and the janitor and healer roll the delete
  forward on every volume.
- Volumes killed right after applying a tombstone: the same.
- A small PUT in a versioning-enabled bucket whose one-trip write was refused but kept
  on a write quorum deletes it once its staged write is committed: the gateway killed
  before that delete leaves it (an unacknowledged PUT, both versions holding its
  bytes), killed after its tombstones lets it roll forward to gone; the PUT's bytes read
  back either way.
"""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from shardgate.faults import ENV
from tests.e2e.conftest import USERS, own_cluster
from tests.e2e.helpers import (
    incarnation,
    marker_from_the_future,
    placement,
    volume_json,
    volume_requests,
)
from tests.e2e.test_kill_points import arm_volume, attempt, db_rows, disarm_live, post

pytestmark = pytest.mark.e2e
SETTLE = 60


@pytest.fixture(scope="module")
def vcluster(tmp_path_factory):
    durability = ("unmarked_seconds=2", "janitor_interval_seconds=0.5",
                  "heal_interval_seconds=0.5")
    with own_cluster(tmp_path_factory, "vfaults", durability, {ENV: "1"}) as dev:
        yield dev


def client(cluster, endpoint: str | None = None):
    return cluster.client_at(endpoint or cluster.endpoint, *USERS["alice"],
                             retries={"total_max_attempts": 1})


def two_versions(cluster, bucket: str, key: str) -> tuple[str, str]:
    s3 = client(cluster)
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key=key, Body=b"old" * 50_000)["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key=key, Body=b"new" * 50_000)["VersionId"]
    return v1, v2


def holders(cluster, bucket: str, key: str, version_id: str) -> list[str]:
    """Volumes that still hold the version's row."""
    inc = incarnation(cluster, bucket)
    out = []
    for vid in placement(cluster, bucket, key):
        row = volume_json(cluster, vid, f"/objects/version?incarnation={inc}&key={key}"
                          f"&version_id={version_id}&as_list=1")["versions"]
        if row and not row[0].get("forgotten"):
            out.append(vid)
    return out


def check_gone(cluster, bucket: str, key: str, deleted: str, kept: str) -> None:
    """Reads never serve the deleted version; healing removes it everywhere."""
    s3 = client(cluster)
    assert s3.get_object(Bucket=bucket, Key=key)["VersionId"] == kept
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key=key, VersionId=deleted)
    assert err.value.response["Error"]["Code"] == "NoSuchVersion"
    listed = [v["VersionId"] for v in s3.list_object_versions(Bucket=bucket,
                                                              Prefix=key)["Versions"]]
    assert deleted not in listed
    deadline = time.monotonic() + SETTLE
    while left := holders(cluster, bucket, key, deleted):
        assert time.monotonic() < deadline, f"{deleted} still on {left}"
        time.sleep(0.5)


def test_volume_down_during_the_delete(vcluster):
    v1, v2 = two_versions(vcluster, "vdown", "k")
    victim = placement(vcluster, "vdown", "k")[0]
    vcluster.kill_volume(victim)
    try:
        client(vcluster).delete_object(Bucket="vdown", Key="k", VersionId=v2)
    finally:
        vcluster.restart_volume(victim)
    check_gone(vcluster, "vdown", "k", v2, v1)


def test_gateway_killed_after_the_tombstones(vcluster):
    v1, v2 = two_versions(vcluster, "vgate", "k")
    endpoint = vcluster.second_gateway()
    post(f"{endpoint}/-/faults", {"point": "gateway.after_tombstones"})
    outcome = attempt(lambda: client(vcluster, endpoint).delete_object(
        Bucket="vgate", Key="k", VersionId=v2))
    assert outcome == "cut"
    check_gone(vcluster, "vgate", "k", v2, v1)


@pytest.mark.parametrize("count", [1, 3])
def test_volumes_killed_after_a_tombstone(vcluster, count):
    bucket = f"vvol{count}"
    v1, v2 = two_versions(vcluster, bucket, "k")
    victims = list(placement(vcluster, bucket, "k")[:count])
    for vid in victims:
        arm_volume(vcluster, vid, "forget.after_txn")
    outcome = attempt(lambda: client(vcluster).delete_object(Bucket=bucket, Key="k",
                                                             VersionId=v2))
    deadline = time.monotonic() + 5
    while any(vcluster.volume_alive(v) for v in victims) and time.monotonic() < deadline:
        time.sleep(0.05)
    disarm_live(vcluster)
    for vid in victims:
        if not vcluster.volume_alive(vid):
            vcluster.restart_volume(vid)
    # With m + 1 dead the delete answers 503, but the tombstones it left roll forward,
    # never the version.
    assert outcome == ("ok" if count == 1 else "503")
    check_gone(vcluster, bucket, "k", v2, v1)


SMALL = b"small" * 600


def kept_then_killed(vcluster, bucket: str, endpoint: str) -> tuple[str, str, str]:
    """Small PUTs through the armed gateway at `endpoint`, each of a key with a marker
    from the future on one volume, until one is cut: (its key, the marker, outcome).

    Whether a refused write stays depends on which answers came first (below the write
    quorum it is rolled back, and the PUT succeeds), hence a few keys, each marker
    further ahead than the clock the last refusal brought. The key's older versions go
    through the same gateway, so that its clock is past them (not past the marker)
    whatever other gateways have seen."""
    writer = client(vcluster, endpoint)
    for n in range(8):
        key = f"k{n}"
        future = marker_from_the_future(vcluster, writer, bucket, key, 1)
        stages = volume_requests(vcluster, "PUT /stage/{stage_id}")
        outcome = attempt(lambda key=key: writer.put_object(Bucket=bucket, Key=key,
                                                            Body=SMALL))
        assert volume_requests(vcluster, "PUT /stage/{stage_id}") > stages, "never refused"
        if outcome != "ok":
            break
    return key, future, outcome


@pytest.mark.parametrize("point", ["gateway.before_forget_kept", "gateway.after_tombstones"])
def test_gateway_killed_while_a_small_put_deletes_its_kept_version(vcluster, point):
    """A delete marker from the future on one volume makes the one-trip write of a small
    PUT through a gateway that has not seen it refused there and kept on the other five;
    the PUT is staged and committed again, and the gateway dies at `point` of deleting
    the kept one. The client sees the connection cut; the key reads back as the PUT's
    bytes, and past the tombstones the kept version goes everywhere."""
    bucket = f"kept-{point.rpartition('.')[2].replace('_', '-')}"
    s3 = client(vcluster)
    s3.create_bucket(Bucket=bucket)
    endpoint = vcluster.second_gateway()
    try:
        # Its healer stands still: a membership check's answers would bring it the clocks.
        post(f"{endpoint}/-/faults", {"hold": "heal.rounds"})
        post(f"{endpoint}/-/faults", {"point": point})
        key, future, outcome = kept_then_killed(vcluster, bucket, endpoint)
    finally:
        vcluster.stop_gateway(endpoint)  # held and armed: no use to later tests
    assert outcome == "cut"
    data = SMALL
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == data and got["VersionId"] > future
    listed = s3.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]
    ours = [v["VersionId"] for v in listed if v["VersionId"] != listed[-1]["VersionId"]]
    for version_id in ours:  # every version but "first" holds the PUT's bytes
        assert s3.get_object(Bucket=bucket, Key=key, VersionId=version_id)["Body"].read() == data
    if point == "gateway.before_forget_kept":
        # It stays, as after any crash past a commit: the PUT was never answered.
        assert len(ours) == 2, listed
        return
    assert ours == [got["VersionId"]], listed  # its tombstones outweigh it already
    inc = incarnation(vcluster, bucket)
    kept = {row[0] for vid in placement(vcluster, bucket, key)
            for row in db_rows(vcluster, vid, "SELECT version_id FROM version_tombstones"
                               " WHERE incarnation=? AND key=?", (inc, key))}
    assert len(kept) == 1, kept
    check_gone(vcluster, bucket, key, kept.pop(), got["VersionId"])
