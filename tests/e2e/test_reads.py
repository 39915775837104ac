"""Read-side operations through boto3: parts of an object, GetObjectAttributes,
ListBuckets pages, response-* overrides."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
import zlib

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import USERS

pytestmark = pytest.mark.e2e
MIB = 1 << 20
ALL_ATTRIBUTES = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]


def crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def error(call, **kwargs) -> tuple[int, str]:
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    response = err.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


@pytest.fixture(scope="module")
def objects(s3):
    """A bucket with a three-part CRC32 upload ("mp"), a plain object and an empty one."""
    bucket = f"reads-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    parts = [os.urandom(5 * MIB), os.urandom(5 * MIB + 7), os.urandom(1234)]
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp",
                                     ChecksumAlgorithm="CRC32")["UploadId"]
    done = []
    for number, data in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=number,
                           Body=data, ChecksumAlgorithm="CRC32")
        done.append({"PartNumber": number, "ETag": r["ETag"],
                     "ChecksumCRC32": r["ChecksumCRC32"]})
    complete = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid,
                                            MultipartUpload={"Parts": done})
    plain = os.urandom(3000)
    s3.put_object(Bucket=bucket, Key="plain", Body=plain, ChecksumAlgorithm="SHA256")
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    return {"bucket": bucket, "parts": parts, "complete": complete, "plain": plain}


def test_get_and_head_each_part(s3, objects):
    bucket, parts = objects["bucket"], objects["parts"]
    etag, total = objects["complete"]["ETag"], sum(map(len, parts))
    start = 0
    for number, data in enumerate(parts, 1):
        end = start + len(data) - 1
        got = s3.get_object(Bucket=bucket, Key="mp", PartNumber=number)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert got["ContentRange"] == f"bytes {start}-{end}/{total}"
        assert got["ContentLength"] == len(data)
        assert got["PartsCount"] == 3 and got["ETag"] == etag
        assert hashlib.sha256(got["Body"].read()).digest() == hashlib.sha256(data).digest()
        head = s3.head_object(Bucket=bucket, Key="mp", PartNumber=number)
        assert head["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert head["ContentLength"] == len(data) and head["PartsCount"] == 3
        assert head["ResponseMetadata"]["HTTPHeaders"]["content-range"] == \
            f"bytes {start}-{end}/{total}"
        start = end + 1


def test_part_checksum_in_checksum_mode(cluster, s3, objects):
    bucket, parts = objects["bucket"], objects["parts"]
    got = s3.get_object(Bucket=bucket, Key="mp", PartNumber=2, ChecksumMode="ENABLED")
    assert got["ChecksumCRC32"] == crc32(parts[1])
    assert got["ChecksumType"] == "COMPOSITE"
    got["Body"].read()
    # boto3 asks for checksums unless told to validate only when required
    quiet = cluster.client(*USERS["alice"], response_checksum_validation="when_required")
    plain = quiet.get_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert "ChecksumCRC32" not in plain
    plain["Body"].close()


def test_part_numbers_refused(s3, objects):
    bucket = objects["bucket"]
    assert error(s3.get_object, Bucket=bucket, Key="mp", PartNumber=4) == \
        (416, "InvalidPartNumber")
    assert error(s3.head_object, Bucket=bucket, Key="mp", PartNumber=4)[0] == 416
    assert error(s3.get_object, Bucket=bucket, Key="plain", PartNumber=2) == \
        (416, "InvalidPartNumber")
    assert error(s3.get_object, Bucket=bucket, Key="mp", PartNumber=1,
                 Range="bytes=0-9") == (400, "InvalidRequest")
    assert error(s3.head_object, Bucket=bucket, Key="mp", PartNumber=1,
                 Range="bytes=0-9")[0] == 400
    assert error(s3.get_object, Bucket=bucket, Key="mp", PartNumber=0) == \
        (400, "InvalidArgument")
    assert error(s3.get_object, Bucket=bucket, Key="mp", PartNumber=10001) == \
        (400, "InvalidArgument")
    assert error(s3.get_object, Bucket=bucket, Key="missing", PartNumber=1) == \
        (404, "NoSuchKey")


def test_plain_object_is_part_one(s3, objects):
    bucket, data = objects["bucket"], objects["plain"]
    got = s3.get_object(Bucket=bucket, Key="plain", PartNumber=1)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["ContentRange"] == f"bytes 0-{len(data) - 1}/{len(data)}"
    assert "PartsCount" not in got
    assert got["Body"].read() == data
    head = s3.head_object(Bucket=bucket, Key="plain", PartNumber=1, ChecksumMode="ENABLED")
    assert head["ContentLength"] == len(data)
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    empty = s3.get_object(Bucket=bucket, Key="empty", PartNumber=1)
    assert empty["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert empty["Body"].read() == b""


def test_part_with_conditions(s3, objects):
    bucket, etag = objects["bucket"], objects["complete"]["ETag"]
    assert error(s3.get_object, Bucket=bucket, Key="mp", PartNumber=1,
                 IfNoneMatch=etag)[0] == 304
    assert error(s3.get_object, Bucket=bucket, Key="mp", PartNumber=1,
                 IfMatch='"0000"') == (412, "PreconditionFailed")


def test_attributes_of_multipart_object(s3, objects):
    bucket, parts, complete = objects["bucket"], objects["parts"], objects["complete"]
    got = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=ALL_ATTRIBUTES)
    head = s3.head_object(Bucket=bucket, Key="mp")
    assert got["ETag"] == complete["ETag"].strip('"')
    assert got["Checksum"] == {"ChecksumCRC32": complete["ChecksumCRC32"],
                               "ChecksumType": "COMPOSITE"}
    assert got["StorageClass"] == "STANDARD"
    assert got["ObjectSize"] == sum(map(len, parts))
    assert got["LastModified"] == head["LastModified"]
    assert "VersionId" not in got and "DeleteMarker" not in got
    listed = got["ObjectParts"]
    assert (listed["TotalPartsCount"], listed["IsTruncated"], listed["MaxParts"]) == \
        (3, False, 1000)
    assert listed["Parts"] == [{"PartNumber": n, "Size": len(d), "ChecksumCRC32": crc32(d)}
                               for n, d in enumerate(parts, 1)]


def test_attributes_parts_pages(s3, objects):
    bucket, parts = objects["bucket"], objects["parts"]
    page = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=["ObjectParts"],
                                    MaxParts=1, PartNumberMarker=1)["ObjectParts"]
    assert (page["PartNumberMarker"], page["NextPartNumberMarker"], page["MaxParts"],
            page["IsTruncated"], page["TotalPartsCount"]) == (1, 2, 1, True, 3)
    assert [p["PartNumber"] for p in page["Parts"]] == [2]
    last = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=["ObjectParts"],
                                    MaxParts=5, PartNumberMarker=2)["ObjectParts"]
    assert last["IsTruncated"] is False
    assert [(p["PartNumber"], p["Size"]) for p in last["Parts"]] == [(3, len(parts[2]))]


def test_attributes_of_plain_object(s3, objects):
    bucket, data = objects["bucket"], objects["plain"]
    got = s3.get_object_attributes(Bucket=bucket, Key="plain", ObjectAttributes=ALL_ATTRIBUTES)
    assert got["ETag"] == hashlib.md5(data).hexdigest()
    assert got["Checksum"] == {
        "ChecksumSHA256": base64.b64encode(hashlib.sha256(data).digest()).decode(),
        "ChecksumType": "FULL_OBJECT"}
    assert got["ObjectSize"] == len(data) and got["StorageClass"] == "STANDARD"
    assert "ObjectParts" not in got
    only = s3.get_object_attributes(Bucket=bucket, Key="plain", ObjectAttributes=["ObjectSize"])
    assert only["ObjectSize"] == len(data)
    assert not {"ETag", "Checksum", "StorageClass", "ObjectParts"} & set(only)
    null = s3.get_object_attributes(Bucket=bucket, Key="plain", VersionId="null",
                                    ObjectAttributes=["ETag"])
    assert null["ETag"] == got["ETag"]


def test_attributes_errors(s3, objects):
    bucket = objects["bucket"]
    call = s3.get_object_attributes
    assert error(call, Bucket=bucket, Key="plain", ObjectAttributes=["Bogus"]) == \
        (400, "InvalidArgument")
    assert error(call, Bucket=bucket, Key="plain", ObjectAttributes=[]) == \
        (400, "InvalidArgument")
    assert error(call, Bucket=bucket, Key="missing", ObjectAttributes=["ETag"]) == \
        (404, "NoSuchKey")
    assert error(call, Bucket=bucket, Key="plain", VersionId="0" * 32,
                 ObjectAttributes=["ETag"]) == (404, "NoSuchVersion")
    assert error(call, Bucket=bucket, Key="plain", VersionId="3HL4kqtJlcpXroDTDmJ",
                 ObjectAttributes=["ETag"]) == (400, "InvalidArgument")
    assert error(call, Bucket=bucket, Key="plain", ObjectAttributes=["ETag"],
                 MaxParts=-1) == (400, "InvalidArgument")


def test_list_buckets_pages(cluster, s3):
    prefix = f"lb-{uuid.uuid4().hex[:10]}-"
    names = [prefix + suffix for suffix in ("c", "a", "b")]
    for name in names:
        s3.create_bucket(Bucket=name)
    page = s3.list_buckets(MaxBuckets=2, Prefix=prefix)
    assert [b["Name"] for b in page["Buckets"]] == sorted(names)[:2]
    assert page["Prefix"] == prefix and "IsTruncated" not in page
    assert page["Buckets"][0]["BucketRegion"] == "us-east-1"
    rest = s3.list_buckets(MaxBuckets=2, Prefix=prefix,
                           ContinuationToken=page["ContinuationToken"])
    assert [b["Name"] for b in rest["Buckets"]] == sorted(names)[2:]
    assert "ContinuationToken" not in rest
    whole = s3.list_buckets(Prefix=prefix, BucketRegion="eu-west-1")
    assert [b["Name"] for b in whole["Buckets"]] == sorted(names)
    assert "ContinuationToken" not in whole
    everything = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert everything == sorted(everything) and set(names) <= set(everything)
    assert "Prefix" not in s3.list_buckets()
    raw = cluster.client(*USERS["alice"], parameter_validation=False)
    for bad in (0, 10001):
        assert error(raw.list_buckets, MaxBuckets=bad) == (400, "InvalidArgument")
    assert error(s3.list_buckets, ContinuationToken="%%%") == (400, "InvalidArgument")


def test_response_overrides(s3, bucket):
    s3.put_object(Bucket=bucket, Key="o", Body=b"override me", ContentType="text/plain")
    overrides = {
        "ResponseContentType": "application/x-overridden",
        "ResponseContentDisposition": 'attachment; filename="o.bin"',
        "ResponseCacheControl": "no-store",
        "ResponseExpires": "Thu, 01 Dec 2044 16:00:00 GMT",
        "ResponseContentLanguage": "de-CH",
        "ResponseContentEncoding": "identity",
    }
    got = s3.get_object(Bucket=bucket, Key="o", **overrides)
    assert got["Body"].read() == b"override me"
    assert got["ContentType"] == "application/x-overridden"
    assert got["ContentDisposition"] == 'attachment; filename="o.bin"'
    assert got["CacheControl"] == "no-store"
    assert got["ResponseMetadata"]["HTTPHeaders"]["expires"] == "Thu, 01 Dec 2044 16:00:00 GMT"
    assert got["ContentLanguage"] == "de-CH"
    assert got["ContentEncoding"] == "identity"
    stored = s3.head_object(Bucket=bucket, Key="o")
    assert stored["ContentType"] == "text/plain" and "CacheControl" not in stored
