"""ListObjectsV2 (prefix, delimiter, pagination, url encoding), DeleteObjects, buckets."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.e2e


def _put_keys(s3, bucket, keys):
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())


def test_list_prefix_delimiter_and_pages(s3, bucket):
    keys = [f"a/{i:03d}" for i in range(25)] + ["b/x", "b/y/z", "c", "d e+f"]
    _put_keys(s3, bucket, keys)
    everything = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                               PaginationConfig={"PageSize": 7}):
        everything += [o["Key"] for o in page.get("Contents", [])]
    assert everything == sorted(keys)
    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["a/", "b/"]
    assert [o["Key"] for o in top["Contents"]] == ["c", "d e+f"]
    b = s3.list_objects_v2(Bucket=bucket, Prefix="b/", Delimiter="/")
    assert [o["Key"] for o in b["Contents"]] == ["b/x"]
    assert [p["Prefix"] for p in b["CommonPrefixes"]] == ["b/y/"]
    paged = s3.list_objects_v2(Bucket=bucket, Delimiter="/", MaxKeys=1)
    assert paged["IsTruncated"] and paged["KeyCount"] == 1
    rest = s3.list_objects_v2(Bucket=bucket, Delimiter="/",
                              ContinuationToken=paged["NextContinuationToken"])
    assert [p["Prefix"] for p in rest["CommonPrefixes"]] == ["b/"]
    after = s3.list_objects_v2(Bucket=bucket, StartAfter="b/y/z")
    assert [o["Key"] for o in after["Contents"]] == ["c", "d e+f"]
    v1 = s3.list_objects(Bucket=bucket, Prefix="a/", MaxKeys=5)
    assert len(v1["Contents"]) == 5 and v1["IsTruncated"]


def test_deleted_keys_leave_listing(s3, bucket):
    _put_keys(s3, bucket, ["k1", "k2", "k3"])
    s3.delete_object(Bucket=bucket, Key="k2")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k1", "k3"]


def test_delete_objects_verbose_and_quiet(s3, bucket):
    _put_keys(s3, bucket, [f"d/{i}" for i in range(10)])
    verbose = s3.delete_objects(Bucket=bucket, Delete={
        "Objects": [{"Key": f"d/{i}"} for i in range(5)]})
    assert sorted(d["Key"] for d in verbose["Deleted"]) == [f"d/{i}" for i in range(5)]
    quiet = s3.delete_objects(Bucket=bucket, Delete={
        "Objects": [{"Key": f"d/{i}"} for i in range(5, 10)], "Quiet": True})
    assert "Deleted" not in quiet and "Errors" not in quiet
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_bucket_lifecycle(s3, s3_bob):
    s3.create_bucket(Bucket="life-cycle-bucket")
    s3.create_bucket(Bucket="life-cycle-bucket")  # its owner again: 200 in us-east-1
    with pytest.raises(ClientError) as err:
        s3_bob.create_bucket(Bucket="life-cycle-bucket")
    assert err.value.response["Error"]["Code"] == "BucketAlreadyExists"
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert "life-cycle-bucket" in names
    assert "life-cycle-bucket" not in [b["Name"] for b in s3_bob.list_buckets()["Buckets"]]
    s3.head_bucket(Bucket="life-cycle-bucket")
    s3.put_object(Bucket="life-cycle-bucket", Key="x", Body=b"x")
    with pytest.raises(ClientError) as err:
        s3.delete_bucket(Bucket="life-cycle-bucket")
    assert err.value.response["Error"]["Code"] == "BucketNotEmpty"
    s3.delete_object(Bucket="life-cycle-bucket", Key="x")
    s3.delete_bucket(Bucket="life-cycle-bucket")
    with pytest.raises(ClientError) as err:
        s3.head_bucket(Bucket="life-cycle-bucket")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    # recreating the bucket never brings the old object back
    s3.create_bucket(Bucket="life-cycle-bucket")
    assert s3.list_objects_v2(Bucket="life-cycle-bucket")["KeyCount"] == 0
    s3.delete_bucket(Bucket="life-cycle-bucket")


def test_invalid_bucket_name(s3):
    with pytest.raises(ClientError) as err:
        s3.create_bucket(Bucket="Invalid_Name")
    assert err.value.response["Error"]["Code"] in ("InvalidBucketName",)


def test_delete_objects_full_batch_streams_answer(s3, bucket):
    """1,000 keys, the most one request may carry (s3fs and aws s3 rm send full batches)."""
    keys = [f"batch/{i:04d}" for i in range(1000)]
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=b"x"), keys))
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    assert sorted(d["Key"] for d in result["Deleted"]) == keys
    assert "Errors" not in result
    assert s3.list_objects_v2(Bucket=bucket, Prefix="batch/")["KeyCount"] == 0
