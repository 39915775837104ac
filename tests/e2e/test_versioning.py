"""Bucket versioning through boto3: states, null versions, delete markers, reads and
deletes by version id, ListObjectVersions and the exact version headers S3 sends."""

from __future__ import annotations

import os

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import USERS

pytestmark = pytest.mark.e2e


def code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


def headers(answer: dict) -> dict[str, str]:
    return answer["ResponseMetadata"]["HTTPHeaders"]


def enable(s3, bucket: str, status: str = "Enabled") -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})


def listing(s3, bucket: str, **kwargs) -> list[tuple[str, str, bool, bool]]:
    """(key, version id, is latest, is a delete marker) in the order listed."""
    answer = s3.list_object_versions(Bucket=bucket, **kwargs)
    merged = [(v["Key"], v["VersionId"], v["IsLatest"], False, v["LastModified"])
              for v in answer.get("Versions", [])]
    merged += [(m["Key"], m["VersionId"], m["IsLatest"], True, m["LastModified"])
               for m in answer.get("DeleteMarkers", [])]
    # boto3 splits the two; S3 interleaves them by key, newest first.
    merged.sort(key=lambda e: (e[0], -e[4].timestamp()))
    return [e[:4] for e in merged]


def body(s3, bucket: str, key: str, **kwargs) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key, **kwargs)["Body"].read()


def test_states(s3, bucket):
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    enable(s3, bucket)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    enable(s3, bucket, "Suspended")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    with pytest.raises(ClientError) as err:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Off"})
    assert code(err.value) == "MalformedXML"


def test_never_versioned_bucket_sends_no_version_headers(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"1")
    assert "x-amz-version-id" not in headers(put)
    assert "x-amz-version-id" not in headers(s3.get_object(Bucket=bucket, Key="k"))
    assert "x-amz-version-id" not in headers(s3.delete_object(Bucket=bucket, Key="k"))
    s3.put_object(Bucket=bucket, Key="k2", Body=b"2")
    answer = s3.list_object_versions(Bucket=bucket)
    assert [(v["Key"], v["VersionId"], v["IsLatest"]) for v in answer["Versions"]] == [
        ("k2", "null", True)]
    assert "DeleteMarkers" not in answer
    assert body(s3, bucket, "k2", VersionId="null") == b"2"
    s3.delete_object(Bucket=bucket, Key="k2", VersionId="null")
    assert "Versions" not in s3.list_object_versions(Bucket=bucket)


def test_enabled_keeps_every_version(s3, bucket):
    enable(s3, bucket)
    ids = []
    for n in range(3):
        put = s3.put_object(Bucket=bucket, Key="k", Body=f"v{n}".encode())
        ids.append(put["VersionId"])
        assert headers(put)["x-amz-version-id"] == put["VersionId"] != "null"
    assert body(s3, bucket, "k") == b"v2"
    for n, vid in enumerate(ids):
        got = s3.get_object(Bucket=bucket, Key="k", VersionId=vid)
        assert got["Body"].read() == f"v{n}".encode() and got["VersionId"] == vid
        assert s3.head_object(Bucket=bucket, Key="k", VersionId=vid)["VersionId"] == vid
    assert listing(s3, bucket) == [("k", ids[2], True, False), ("k", ids[1], False, False),
                                   ("k", ids[0], False, False)]


def test_delete_markers(s3, bucket):
    enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    deleted = s3.delete_object(Bucket=bucket, Key="k")
    assert deleted["DeleteMarker"] is True
    marker = deleted["VersionId"]
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="k")
    assert code(err.value) == "NoSuchKey"
    assert headers(err.value.response)["x-amz-delete-marker"] == "true"
    assert headers(err.value.response)["x-amz-version-id"] == marker
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="k", VersionId=marker)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 405
    assert headers(err.value.response)["x-amz-delete-marker"] == "true"
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="k", VersionId=marker)
    assert code(err.value) == "MethodNotAllowed"
    assert listing(s3, bucket) == [("k", marker, True, True), ("k", v1, False, False)]
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    # Removing the marker by its id brings the older version back as current.
    removed = s3.delete_object(Bucket=bucket, Key="k", VersionId=marker)
    assert removed["DeleteMarker"] is True and removed["VersionId"] == marker
    assert body(s3, bucket, "k") == b"one"
    assert listing(s3, bucket) == [("k", v1, True, False)]


def test_delete_by_version_id(s3, bucket):
    enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"two")["VersionId"]
    answer = s3.delete_object(Bucket=bucket, Key="k", VersionId=v2)
    assert answer["VersionId"] == v2 and "DeleteMarker" not in answer
    assert body(s3, bucket, "k") == b"one"
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="k", VersionId=v2)
    assert code(err.value) == "NoSuchVersion"
    s3.delete_object(Bucket=bucket, Key="k", VersionId=v1)
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="k")
    assert code(err.value) == "NoSuchKey"
    assert "x-amz-delete-marker" not in headers(err.value.response)
    assert listing(s3, bucket) == []
    # Deleting a version that is not there is not an error, as in S3.
    s3.delete_object(Bucket=bucket, Key="k", VersionId=v1)


def test_bad_version_ids(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="k", VersionId="not-a-version")
    assert code(err.value) == "InvalidArgument"
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="k", VersionId="0" * 32)
    assert code(err.value) == "NoSuchVersion"


def test_suspended_writes_replace_only_the_null_version(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"null-1")  # before versioning: null
    enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"v1")["VersionId"]
    enable(s3, bucket, "Suspended")
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"null-2")
    assert "x-amz-version-id" not in headers(put)  # only while Enabled
    assert headers(s3.get_object(Bucket=bucket, Key="k"))["x-amz-version-id"] == "null"
    assert listing(s3, bucket) == [("k", "null", True, False), ("k", v1, False, False)]
    assert body(s3, bucket, "k", VersionId="null") == b"null-2"
    assert body(s3, bucket, "k", VersionId=v1) == b"v1"
    deleted = s3.delete_object(Bucket=bucket, Key="k")  # a null delete marker
    assert deleted["DeleteMarker"] is True and deleted["VersionId"] == "null"
    assert listing(s3, bucket) == [("k", "null", True, True), ("k", v1, False, False)]


def test_enable_then_write_at_once_keeps_the_null_version(cluster, s3, bucket):
    """A second gateway that just read the bucket (unversioned) must not take the write
    that follows PutBucketVersioning for an unversioned one."""
    other = cluster.client_at(cluster.second_gateway(), *USERS["alice"])
    s3.put_object(Bucket=bucket, Key="k", Body=b"null")
    other.head_bucket(Bucket=bucket)  # caches the bucket record
    enable(s3, bucket)
    v1 = other.put_object(Bucket=bucket, Key="k", Body=b"v1")["VersionId"]
    assert v1 != "null"
    assert body(s3, bucket, "k", VersionId="null") == b"null"


def test_copy_restores_an_old_version(s3, bucket):
    enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"old")["VersionId"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"new")
    copied = s3.copy_object(Bucket=bucket, Key="k", CopySource={
        "Bucket": bucket, "Key": "k", "VersionId": v1})
    assert copied["CopySourceVersionId"] == v1 and copied["VersionId"] not in (v1, "null")
    assert body(s3, bucket, "k") == b"old"
    # Undelete: with a delete marker on top, copying an older version back restores it.
    s3.delete_object(Bucket=bucket, Key="k")
    s3.copy_object(Bucket=bucket, Key="k", CopySource={"Bucket": bucket, "Key": "k",
                                                       "VersionId": v1})
    assert body(s3, bucket, "k") == b"old"


def test_delete_objects_with_versions(s3, bucket):
    enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="a", Body=b"1")["VersionId"]
    s3.put_object(Bucket=bucket, Key="b", Body=b"2")
    answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "a", "VersionId": v1}, {"Key": "b"}]})
    by_key = {d["Key"]: d for d in answer["Deleted"]}
    assert by_key["a"]["VersionId"] == v1 and "DeleteMarker" not in by_key["a"]
    assert by_key["b"]["DeleteMarker"] is True
    marker = by_key["b"]["DeleteMarkerVersionId"]
    answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "b", "VersionId": marker}]})
    assert answer["Deleted"][0]["DeleteMarker"] is True
    assert answer["Deleted"][0]["DeleteMarkerVersionId"] == marker
    assert body(s3, bucket, "b") == b"2"


def test_list_versions_pages_prefixes_and_markers(s3, bucket):
    enable(s3, bucket)
    expected = []
    for key in ["a", "b/1", "b/2", "c"]:
        ids = [s3.put_object(Bucket=bucket, Key=key, Body=os.urandom(10))["VersionId"]
               for _ in range(3)]
        expected += [(key, vid) for vid in reversed(ids)]
    seen = []
    for page in s3.get_paginator("list_object_versions").paginate(
            Bucket=bucket, PaginationConfig={"PageSize": 2}):
        seen += [(v["Key"], v["VersionId"]) for v in page.get("Versions", [])]
    assert seen == expected
    answer = s3.list_object_versions(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in answer["CommonPrefixes"]] == ["b/"]
    assert {v["Key"] for v in answer["Versions"]} == {"a", "c"}
    answer = s3.list_object_versions(Bucket=bucket, KeyMarker="b/1",
                                     VersionIdMarker=expected[3][1])
    assert [(v["Key"], v["VersionId"]) for v in answer["Versions"]][:2] == expected[4:6]
    answer = s3.list_object_versions(Bucket=bucket, Prefix="b/", MaxKeys=4)
    assert answer["IsTruncated"] and answer["NextKeyMarker"] == "b/2"
    assert len(answer["Versions"]) == 4


def test_encoding_type_url(s3, bucket):
    enable(s3, bucket)
    s3.put_object(Bucket=bucket, Key="a\nb", Body=b"x")
    # botocore asks for url encoding itself and decodes what S3 encodes...
    answer = s3.list_object_versions(Bucket=bucket, Prefix="a\n")
    assert answer["Versions"][0]["Key"] == "a\nb"
    assert answer["Prefix"] == "a\n"
    # ...and leaves the encoded values to a caller who asked for it.
    answer = s3.list_object_versions(Bucket=bucket, EncodingType="url", Prefix="a\n")
    assert (answer["Versions"][0]["Key"], answer["Prefix"]) == ("a%0Ab", "a%0A")


def test_a_bucket_with_versions_left_is_not_empty(s3, bucket):
    enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"x")["VersionId"]
    marker = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    with pytest.raises(ClientError) as err:
        s3.delete_bucket(Bucket=bucket)
    assert code(err.value) == "BucketNotEmpty"
    s3.delete_object(Bucket=bucket, Key="k", VersionId=v1)
    with pytest.raises(ClientError) as err:
        s3.delete_bucket(Bucket=bucket)  # the delete marker is still a version
    assert code(err.value) == "BucketNotEmpty"
    s3.delete_object(Bucket=bucket, Key="k", VersionId=marker)
    s3.delete_bucket(Bucket=bucket)


def test_write_conditions_with_etags(s3, bucket):
    enable(s3, bucket)
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"1", IfNoneMatch="*")["ETag"]
    second = s3.put_object(Bucket=bucket, Key="k", Body=b"2")["ETag"]
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="k", Body=b"3", IfNoneMatch=second)
    assert code(err.value) == "PreconditionFailed"
    s3.put_object(Bucket=bucket, Key="k", Body=b"3", IfNoneMatch=first)  # not current
    assert body(s3, bucket, "k") == b"3"


def test_attributes_carry_the_version(s3, bucket):
    enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"foo")["VersionId"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"bar")
    answer = s3.get_object_attributes(Bucket=bucket, Key="k", VersionId=v1,
                                      ObjectAttributes=["ObjectSize"])
    assert answer["VersionId"] == v1 and answer["ObjectSize"] == 3


def test_deleted_key_in_a_never_versioned_bucket_is_no_marker(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="k")
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="k")
    assert headers(err.value.response)["x-amz-delete-marker"] == "false"


def test_owner_re_creating_a_bucket_gets_200(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.create_bucket(Bucket=bucket)  # us-east-1: 200, nothing changes
    assert body(s3, bucket, "k") == b"x"
