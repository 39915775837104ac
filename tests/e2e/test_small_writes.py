"""Small objects and delete markers written in one round trip: a small PUT's fragments
ride in the commits, no stage; a DELETE's null marker is committed without reading the
key first.

What must hold: a bad body is never committed; a one-trip write is refused by a volume
that holds a newer version of the key (its id was picked before any volume answered),
and then goes the two-phase way, so the acknowledged write is the key's current
version, never shadowed, and one DELETE leaves one marker. Kill points during one-trip
writes: tests/e2e/test_kill_points.py (ops "put-small" and "delete").
"""

from __future__ import annotations

import base64
import hashlib
import os

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import USERS, own_cluster
from tests.e2e.helpers import marker_from_the_future, volume_requests

pytestmark = pytest.mark.e2e
KIB = 1 << 10


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    """A cluster of this module's own: the request counters below count this module's
    writes alone (the shared cluster carries other modules' background traffic)."""
    with own_cluster(tmp_path_factory, "small") as dev:
        yield dev


@pytest.fixture(scope="module")
def s3(cluster):
    return cluster.client(*USERS["alice"])


def test_a_small_put_is_one_request_per_volume(cluster, s3, bucket):
    stages = volume_requests(cluster, "PUT /stage/{stage_id}")
    commits = volume_requests(cluster, "POST /objects/commit")
    data = os.urandom(4 * KIB)
    s3.put_object(Bucket=bucket, Key="small", Body=data)
    assert volume_requests(cluster, "PUT /stage/{stage_id}") == stages
    assert volume_requests(cluster, "POST /objects/commit") >= commits + 6
    assert s3.get_object(Bucket=bucket, Key="small")["Body"].read() == data
    s3.put_object(Bucket=bucket, Key="big", Body=os.urandom(200 * KIB))
    assert volume_requests(cluster, "PUT /stage/{stage_id}") == stages + 6


def test_a_bad_small_body_is_never_committed(cluster, s3, bucket):
    commits = volume_requests(cluster, "POST /objects/commit")
    wrong = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"x" * 1000, ContentMD5=wrong)
    assert caught.value.response["Error"]["Code"] == "BadDigest"
    assert volume_requests(cluster, "POST /objects/commit") == commits
    with pytest.raises(ClientError) as caught:
        s3.head_object(Bucket=bucket, Key="bad")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


@pytest.mark.parametrize("ahead_on", [6, 1])
def test_a_newer_version_on_the_volumes_sends_it_two_phase(cluster, s3, bucket, ahead_on):
    """A delete marker an hour in the future (as from a gateway whose clock runs ahead)
    is on `ahead_on` volumes: the one-trip write's id is older, so they refuse it, and
    the write is staged instead, its id picked past their clocks: it reads back. On all
    six the one-trip write lands nowhere and is rolled back; on one, it lands on the
    other five, a write quorum, so it stays and the staged write supersedes it."""
    key = f"ahead-{ahead_on}"
    future = marker_from_the_future(cluster, s3, bucket, key, ahead_on)
    stages = volume_requests(cluster, "PUT /stage/{stage_id}")
    # No read of the key before the PUT: its answers would carry the volumes' clocks.
    data = os.urandom(3 * KIB)
    answer = s3.put_object(Bucket=bucket, Key=key, Body=data)
    assert answer["VersionId"] > future
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data
    # One PUT, one version: a refused write kept on five volumes is deleted once the
    # staged write supersedes it. (Whether the volumes refused, and whether the refused
    # write stayed or was rolled back, depends on timing; `staged` tells the first.
    # test_version_faults.py makes sure of the kept case and kills the gateway there.)
    staged = volume_requests(cluster, "PUT /stage/{stage_id}") > stages
    listed = s3.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]
    assert len(listed) == 2, (staged, listed)  # "first" and this PUT's
    assert [v["VersionId"] for v in listed if v["IsLatest"]] == [answer["VersionId"]]


def _latest_requests(cluster) -> float:
    return (volume_requests(cluster, "GET /objects/latest", None)
            + volume_requests(cluster, "POST /objects/latest", None))


def _commit_requests(cluster) -> float:
    return (volume_requests(cluster, "POST /objects/commit")
            + volume_requests(cluster, "POST /objects/commits"))


@pytest.mark.parametrize("versioning", [None, "Suspended"])
def test_a_delete_is_one_request_per_volume(cluster, s3, bucket, versioning):
    """A DELETE whose marker is a null version asks no volume for the key first: one
    commit per volume (or one share of a batch of commits), no `latest` question."""
    if versioning:
        s3.put_bucket_versioning(Bucket=bucket,
                                 VersioningConfiguration={"Status": versioning})
    s3.put_object(Bucket=bucket, Key="gone", Body=b"x" * 100)
    latest, commits = _latest_requests(cluster), _commit_requests(cluster)
    answer = s3.delete_object(Bucket=bucket, Key="gone")
    assert _latest_requests(cluster) == latest
    assert commits < _commit_requests(cluster) <= commits + 6
    if versioning:
        assert answer["DeleteMarker"] and answer["VersionId"] == "null"
    with pytest.raises(ClientError) as caught:
        s3.head_object(Bucket=bucket, Key="gone")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    # In a versioning-enabled bucket every marker has an id of its own: read first.
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    latest = _latest_requests(cluster)
    s3.delete_object(Bucket=bucket, Key="gone")
    assert _latest_requests(cluster) > latest


@pytest.mark.parametrize("ahead_on", [6, 1])
def test_a_newer_version_on_the_volumes_sends_a_delete_two_phase(cluster, s3, bucket,
                                                                 ahead_on):
    """A delete marker an hour in the future is on `ahead_on` volumes of a suspended
    bucket's key: a DELETE committed without reading the key is refused there, and is
    written again after a read, its id past their clocks. Its null marker is the key's
    latest version, and the only null one (the refused marker, if kept on the five
    volumes that took it, is replaced)."""
    key = f"ahead-delete-{ahead_on}"
    future = marker_from_the_future(cluster, s3, bucket, key, ahead_on)
    s3.put_bucket_versioning(Bucket=bucket,
                             VersioningConfiguration={"Status": "Suspended"})
    # No read of the key before the DELETE: its answers would carry the volumes' clocks.
    answer = s3.delete_object(Bucket=bucket, Key=key)
    assert answer["DeleteMarker"] and answer["VersionId"] == "null"
    markers = s3.list_object_versions(Bucket=bucket, Prefix=key)["DeleteMarkers"]
    assert [m["VersionId"] for m in markers if m["IsLatest"]] == ["null"], markers
    assert [m["VersionId"] for m in markers].count("null") == 1, markers
    assert future in [m["VersionId"] for m in markers]


def test_read_after_write_through_another_gateway(cluster, s3, bucket):
    """Every GET that starts after a one-trip PUT's 200, through another gateway
    process (its own clock and connections), returns that PUT's bytes: the write is
    pending on the quorum when acknowledged, and the read rule proves it."""
    reader = cluster.client_at(cluster.second_gateway(), *USERS["alice"])
    seen = ""
    for n in range(200):
        data = os.urandom(1000 + n)
        version = s3.put_object(Bucket=bucket, Key="raw", Body=data)["ETag"]
        got = reader.get_object(Bucket=bucket, Key="raw")
        assert got["ETag"] == version and got["Body"].read() == data, n
        assert got["LastModified"].isoformat() >= seen
        seen = got["LastModified"].isoformat()
