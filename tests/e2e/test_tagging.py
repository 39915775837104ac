"""Object and bucket tagging through boto3, across two gateways and with volumes down."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import USERS, own_cluster
from tests.e2e.helpers import incarnation, placement, volume_json

pytestmark = pytest.mark.e2e


def code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


def tag_set(tags: dict[str, str]) -> dict:
    return {"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]}


def tags_of(s3, bucket: str, key: str, **kwargs) -> dict[str, str]:
    answer = s3.get_object_tagging(Bucket=bucket, Key=key, **kwargs)
    return {t["Key"]: t["Value"] for t in answer["TagSet"]}


def test_tags_given_with_the_write(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="team=ml&stage=raw%20data")
    assert tags_of(s3, bucket, "k") == {"team": "ml", "stage": "raw data"}
    head = s3.head_object(Bucket=bucket, Key="k")
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-tagging-count"] == "2"
    assert s3.get_object(Bucket=bucket, Key="k")["TagCount"] == 2
    s3.put_object(Bucket=bucket, Key="plain", Body=b"x")
    assert tags_of(s3, bucket, "plain") == {}
    assert "x-amz-tagging-count" not in s3.head_object(
        Bucket=bucket, Key="plain")["ResponseMetadata"]["HTTPHeaders"]


def test_put_get_delete_object_tagging(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="a=1")
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set({"b": "2", "c": ""}))
    assert tags_of(s3, bucket, "k") == {"b": "2", "c": ""}
    version = s3.head_object(Bucket=bucket, Key="k").get("VersionId", "null")
    assert tags_of(s3, bucket, "k", VersionId=version) == {"b": "2", "c": ""}
    assert s3.delete_object_tagging(Bucket=bucket, Key="k")[
        "ResponseMetadata"]["HTTPStatusCode"] == 204
    assert tags_of(s3, bucket, "k") == {}
    with pytest.raises(ClientError) as err:
        s3.put_object_tagging(Bucket=bucket, Key="absent", Tagging=tag_set({"a": "1"}))
    assert code(err.value) == "NoSuchKey"
    # An overwrite starts from its own tags, not the old version's.
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set({"old": "1"}))
    s3.put_object(Bucket=bucket, Key="k", Body=b"y")
    assert tags_of(s3, bucket, "k") == {}


@pytest.mark.parametrize("tags", [
    {f"k{i}": "v" for i in range(11)},
    {"k" * 129: "v"},
    {"k": "v" * 257},
    {"aws:reserved": "v"},
])
def test_tag_limits(s3, bucket, tags):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as err:
        s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set(tags))
    assert code(err.value) == "InvalidTag"
    assert tags_of(s3, bucket, "k") == {}


def test_copy_tagging_directive(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x", Tagging="a=1")
    s3.put_object_tagging(Bucket=bucket, Key="src", Tagging=tag_set({"b": "2"}))
    s3.copy_object(Bucket=bucket, Key="same", CopySource=f"{bucket}/src")
    assert tags_of(s3, bucket, "same") == {"b": "2"}  # the source's newest tags
    s3.copy_object(Bucket=bucket, Key="new", CopySource=f"{bucket}/src",
                   TaggingDirective="REPLACE", Tagging="c=3")
    assert tags_of(s3, bucket, "new") == {"c": "3"}


def test_bucket_tagging(s3, bucket):
    with pytest.raises(ClientError) as err:
        s3.get_bucket_tagging(Bucket=bucket)
    assert code(err.value) == "NoSuchTagSet"
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set({"project": "x", "cost": "7"}))
    answer = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    assert {t["Key"]: t["Value"] for t in answer} == {"project": "x", "cost": "7"}
    s3.delete_bucket_tagging(Bucket=bucket)
    with pytest.raises(ClientError) as err:
        s3.get_bucket_tagging(Bucket=bucket)
    assert code(err.value) == "NoSuchTagSet"


@pytest.fixture(scope="module")
def tcluster(tmp_path_factory):
    with own_cluster(tmp_path_factory, "tags", ("heal_interval_seconds=0.5",)) as dev:
        yield dev


def test_a_change_through_one_gateway_is_read_through_another(tcluster):
    first = tcluster.client(*USERS["alice"])
    second = tcluster.client_at(tcluster.second_gateway(), *USERS["alice"])
    first.create_bucket(Bucket="two")
    first.put_object(Bucket="two", Key="k", Body=b"x")
    for n in range(20):
        (first if n % 2 else second).put_object_tagging(
            Bucket="two", Key="k", Tagging=tag_set({"n": str(n)}))
        assert tags_of(second if n % 2 else first, "two", "k") == {"n": str(n)}
        second.put_bucket_tagging(Bucket="two", Tagging=tag_set({"n": str(n)}))
        answer = first.get_bucket_tagging(Bucket="two")["TagSet"]
        assert answer == [{"Key": "n", "Value": str(n)}]


def test_a_volume_that_missed_a_change_is_healed(tcluster):
    s3 = tcluster.client(*USERS["alice"], retries={"total_max_attempts": 1})
    s3.create_bucket(Bucket="heal")
    s3.put_object(Bucket="heal", Key="k", Body=b"x" * 5000, Tagging="v=1")
    victim = placement(tcluster, "heal", "k")[0]
    tcluster.kill_volume(victim)
    try:
        s3.put_object_tagging(Bucket="heal", Key="k", Tagging=tag_set({"v": "2"}))
        assert tags_of(s3, "heal", "k") == {"v": "2"}
    finally:
        tcluster.restart_volume(victim)
    inc = incarnation(tcluster, "heal")
    deadline = time.monotonic() + 30
    while True:
        row = volume_json(tcluster, victim, f"/objects/latest?incarnation={inc}&key=k")
        held = row["versions"][0].get("attributes", {}).get("tags", {}).get("value")
        if held == {"v": "2"}:
            break
        assert time.monotonic() < deadline, f"{victim} still holds {held}"
        time.sleep(0.5)


def test_a_change_without_the_write_quorum_is_refused(tcluster):
    s3 = tcluster.client(*USERS["alice"], retries={"total_max_attempts": 1})
    s3.create_bucket(Bucket="quorum")
    s3.put_object(Bucket="quorum", Key="k", Body=b"x", Tagging="v=1")
    victims = placement(tcluster, "quorum", "k")[:3]  # m + 1 of a 4+2 placement
    for vid in victims:
        tcluster.kill_volume(vid)
    try:
        with pytest.raises(ClientError) as err:
            s3.put_object_tagging(Bucket="quorum", Key="k", Tagging=tag_set({"v": "2"}))
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    finally:
        for vid in victims:
            tcluster.restart_volume(vid)


def test_tag_header_forms_and_order(s3, bucket):
    """`k` alone is an empty value; tags come back sorted by key, as S3 returns them."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="foo=bar&bar")
    answer = s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"]
    assert answer == [{"Key": "bar", "Value": ""}, {"Key": "foo", "Value": "bar"}]
