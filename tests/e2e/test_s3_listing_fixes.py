"""ListObjects / ListObjectsV2 edge cases as AWS answers them, through boto3."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def _put_keys(s3, bucket, keys):
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")


def test_max_keys_zero_is_an_empty_untruncated_page(s3, bucket):
    _put_keys(s3, bucket, ["a", "b/c"])
    v2 = s3.list_objects_v2(Bucket=bucket, MaxKeys=0)
    assert v2["IsTruncated"] is False and v2["KeyCount"] == 0
    assert "NextContinuationToken" not in v2 and "Contents" not in v2
    v2d = s3.list_objects_v2(Bucket=bucket, MaxKeys=0, Delimiter="/")
    assert v2d["IsTruncated"] is False and "CommonPrefixes" not in v2d
    v1 = s3.list_objects(Bucket=bucket, MaxKeys=0, Delimiter="/")
    assert v1["IsTruncated"] is False and "NextMarker" not in v1
    assert "Contents" not in v1 and "CommonPrefixes" not in v1


def test_url_encoding_round_trips_through_botocore(s3, bucket):
    """boto3 asks for encoding-type=url itself and decodes what it knows is encoded."""
    keys = ["n\nl/a b", "n\nl/c\nd/e", "n\nl/z"]
    _put_keys(s3, bucket, keys)
    v1 = s3.list_objects(Bucket=bucket, Prefix="n\nl/", Delimiter="/", Marker="n\nl/")
    assert v1["Prefix"] == "n\nl/" and v1["Marker"] == "n\nl/" and v1["Delimiter"] == "/"
    assert [o["Key"] for o in v1["Contents"]] == ["n\nl/a b", "n\nl/z"]
    assert [p["Prefix"] for p in v1["CommonPrefixes"]] == ["n\nl/c\nd/"]
    paged = s3.list_objects(Bucket=bucket, Prefix="n\nl/", Delimiter="/", MaxKeys=2)
    assert paged["IsTruncated"] and paged["NextMarker"] == "n\nl/c\nd/"
    v2 = s3.list_objects_v2(Bucket=bucket, Prefix="n\nl/", Delimiter="\n",
                            StartAfter="n\nl/")
    assert v2["Prefix"] == "n\nl/" and v2["StartAfter"] == "n\nl/"
    assert v2["Delimiter"] == "\n"
    assert [o["Key"] for o in v2["Contents"]] == ["n\nl/a b", "n\nl/z"]
    assert [p["Prefix"] for p in v2["CommonPrefixes"]] == ["n\nl/c\n"]
