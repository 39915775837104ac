"""CopyObject and UploadPartCopy through boto3: sources, directives, conditions, ranges."""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import USERS, own_cluster

pytestmark = pytest.mark.e2e

SEG = 1 << 20


def code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


def body(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_copy_across_buckets_keeps_bytes_and_metadata(s3, bucket):
    other = bucket + "-dst"
    s3.create_bucket(Bucket=other)
    data = os.urandom(3 * SEG + 4321)
    s3.put_object(Bucket=bucket, Key="src", Body=data, ContentType="text/x-src",
                  Metadata={"colour": "blue"}, CacheControl="max-age=5")
    answer = s3.copy_object(Bucket=other, Key="dst", CopySource={"Bucket": bucket,
                                                                 "Key": "src"})
    assert answer["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert "LastModified" in answer["CopyObjectResult"]
    got = s3.get_object(Bucket=other, Key="dst")
    assert got["Body"].read() == data
    assert got["ContentType"] == "text/x-src" and got["Metadata"] == {"colour": "blue"}
    assert got["CacheControl"] == "max-age=5"
    assert body(s3, bucket, "src") == data  # the source is untouched


def test_replace_directive_takes_the_request_metadata(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"abc", ContentType="text/a",
                  Metadata={"old": "1"})
    s3.copy_object(Bucket=bucket, Key="dst", CopySource=f"{bucket}/src",
                   MetadataDirective="REPLACE", ContentType="text/b", Metadata={"new": "2"})
    head = s3.head_object(Bucket=bucket, Key="dst")
    assert head["ContentType"] == "text/b" and head["Metadata"] == {"new": "2"}


def test_copy_onto_itself_needs_a_change(s3, bucket):
    data = os.urandom(SEG + 5)
    s3.put_object(Bucket=bucket, Key="k", Body=data, Metadata={"v": "1"})
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=bucket, Key="k", CopySource=f"{bucket}/k")
    assert code(err.value) == "InvalidRequest"
    s3.copy_object(Bucket=bucket, Key="k", CopySource=f"{bucket}/k",
                   MetadataDirective="REPLACE", Metadata={"v": "2"})
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Metadata"] == {"v": "2"} and got["Body"].read() == data


def test_multipart_source_copies_whole(s3, bucket):
    parts = [os.urandom(5 * SEG), os.urandom(SEG + 3)]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    etags = [s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=n + 1,
                            Body=p)["ETag"] for n, p in enumerate(parts)]
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": n + 1, "ETag": e} for n, e in enumerate(etags)]})
    answer = s3.copy_object(Bucket=bucket, Key="copy", CopySource=f"{bucket}/mp")
    whole = b"".join(parts)
    assert answer["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(whole).hexdigest()}"'
    assert body(s3, bucket, "copy") == whole


@pytest.mark.parametrize("key", ["a b+c", "dir/ünï/ко∂", "q?versionId=x", "100%", "a&b=c"])
def test_encoded_source_keys(s3, bucket, key):
    s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    s3.copy_object(Bucket=bucket, Key="out", CopySource={"Bucket": bucket, "Key": key})
    assert body(s3, bucket, "out") == key.encode()


def test_source_version_id(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="src", Body=b"v")
    head = s3.head_object(Bucket=bucket, Key="src")
    version = head.get("VersionId") or "null"
    s3.copy_object(Bucket=bucket, Key="a", CopySource={"Bucket": bucket, "Key": "src",
                                                       "VersionId": version})
    assert body(s3, bucket, "a") == b"v" and put["ETag"]
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=bucket, Key="b", CopySource={
            "Bucket": bucket, "Key": "src", "VersionId": "0" * 32})
    assert code(err.value) == "NoSuchVersion"
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=bucket, Key="b", CopySource={
            "Bucket": bucket, "Key": "src", "VersionId": "nope"})
    assert code(err.value) == "InvalidArgument"


def test_missing_sources(s3, bucket):
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=bucket, Key="x", CopySource=f"{bucket}/absent")
    assert code(err.value) == "NoSuchKey"
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=bucket, Key="x", CopySource="no-such-bucket-here/k")
    assert code(err.value) == "NoSuchBucket"
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=bucket, Key="x", CopySource=bucket)
    assert code(err.value) == "InvalidArgument"


def test_source_conditions(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="src", Body=b"c")["ETag"]
    past = datetime.now(UTC) - timedelta(days=1)
    future = datetime.now(UTC) + timedelta(days=1)
    src = f"{bucket}/src"
    s3.copy_object(Bucket=bucket, Key="ok1", CopySource=src, CopySourceIfMatch=etag)
    s3.copy_object(Bucket=bucket, Key="ok2", CopySource=src, CopySourceIfNoneMatch='"x"')
    s3.copy_object(Bucket=bucket, Key="ok3", CopySource=src, CopySourceIfModifiedSince=past)
    s3.copy_object(Bucket=bucket, Key="ok4", CopySource=src,
                   CopySourceIfUnmodifiedSince=future)
    failing = [{"CopySourceIfMatch": '"nope"'}, {"CopySourceIfNoneMatch": etag},
               {"CopySourceIfModifiedSince": future},
               {"CopySourceIfUnmodifiedSince": past}]
    for condition in failing:
        with pytest.raises(ClientError) as err:
            s3.copy_object(Bucket=bucket, Key="bad", CopySource=src, **condition)
        assert code(err.value) == "PreconditionFailed", condition
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="bad")


def test_destination_conditions(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"new")
    s3.put_object(Bucket=bucket, Key="dst", Body=b"old")
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource=f"{bucket}/src", IfNoneMatch="*")
    assert code(err.value) == "PreconditionFailed"
    assert body(s3, bucket, "dst") == b"old"


def test_checksum_algorithm_on_the_destination(s3, bucket):
    data = os.urandom(2 * SEG + 1)
    s3.put_object(Bucket=bucket, Key="src", Body=data)
    answer = s3.copy_object(Bucket=bucket, Key="dst", CopySource=f"{bucket}/src",
                            ChecksumAlgorithm="SHA256")
    expected = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert answer["CopyObjectResult"]["ChecksumSHA256"] == expected
    head = s3.head_object(Bucket=bucket, Key="dst", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == expected


def test_upload_part_copy_ranges(s3, bucket):
    data = os.urandom(7 * SEG + 11)
    s3.put_object(Bucket=bucket, Key="src", Body=data)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    ranges = [(0, 5 * SEG - 1), (5 * SEG, len(data) - 1)]
    parts = []
    for n, (lo, hi) in enumerate(ranges, start=1):
        answer = s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=upload, PartNumber=n,
                                     CopySource=f"{bucket}/src",
                                     CopySourceRange=f"bytes={lo}-{hi}")
        etag = answer["CopyPartResult"]["ETag"]
        assert etag == f'"{hashlib.md5(data[lo:hi + 1]).hexdigest()}"'
        parts.append({"PartNumber": n, "ETag": etag})
    with pytest.raises(ClientError) as err:
        s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=upload, PartNumber=3,
                            CopySource=f"{bucket}/src",
                            CopySourceRange=f"bytes=0-{len(data)}")
    assert code(err.value) == "InvalidRange"
    s3.complete_multipart_upload(Bucket=bucket, Key="dst", UploadId=upload,
                                 MultipartUpload={"Parts": parts})
    assert body(s3, bucket, "dst") == data


def test_upload_part_copy_whole_source(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"small")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    etag = s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=upload, PartNumber=1,
                               CopySource=f"{bucket}/src")["CopyPartResult"]["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="dst", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert body(s3, bucket, "dst") == b"small"


@pytest.fixture(scope="module")
def trickling(tmp_path_factory):
    """A cluster whose copies all take the slow path: 200 at once, result in the body."""
    with own_cluster(tmp_path_factory, "trickle", gateway=("slow_answer_seconds=0",)) as dev:
        yield dev.client(*USERS["alice"])


def test_slow_copy_answers_in_the_body(trickling):
    s3 = trickling
    s3.create_bucket(Bucket="slow")
    data = os.urandom(4 * SEG)
    s3.put_object(Bucket="slow", Key="src", Body=data)
    answer = s3.copy_object(Bucket="slow", Key="dst", CopySource="slow/src")
    assert answer["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert body(s3, "slow", "dst") == data
    # A late failure is an <Error> inside the 200, which botocore raises.
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket="slow", Key="dst", CopySource="slow/src", IfNoneMatch="*")
    assert code(err.value) == "PreconditionFailed"


def test_slow_complete_answers_in_the_body(trickling):
    s3 = trickling
    s3.create_bucket(Bucket="slow-mpu")
    upload = s3.create_multipart_upload(Bucket="slow-mpu", Key="k")["UploadId"]
    etag = s3.upload_part(Bucket="slow-mpu", Key="k", UploadId=upload, PartNumber=1,
                          Body=b"part")["ETag"]
    with pytest.raises(ClientError) as err:  # a late failure: <Error> inside the 200
        s3.complete_multipart_upload(Bucket="slow-mpu", Key="k", UploadId=upload,
                                     MultipartUpload={"Parts": [
                                         {"PartNumber": 1, "ETag": '"0000"'}]})
    assert code(err.value) == "InvalidPart"
    answer = s3.complete_multipart_upload(Bucket="slow-mpu", Key="k", UploadId=upload,
                                          MultipartUpload={"Parts": [
                                              {"PartNumber": 1, "ETag": etag}]})
    assert answer["ETag"].endswith('-1"')
    assert body(s3, "slow-mpu", "k") == b"part"
