"""Deleting a version by its id under faults: a deleted version never comes back.

- A volume down during the delete keeps the version; when it returns, no read serves
  it (its peers' tombstones outweigh it), and healing removes it there too.
- The gateway killed with the tombstones written but the rows not yet dropped: reads
  already treat the version as deleted, and the janitor and healer roll the delete
  forward on every volume.
- Volumes killed right after applying a tombstone: the same.
"""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from shardgate.faults import ENV
from tests.e2e.conftest import USERS, own_cluster
from tests.e2e.helpers import incarnation, placement, volume_json
from tests.e2e.test_kill_points import arm_volume, attempt, disarm_live, post

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
