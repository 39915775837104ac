"""Read-side operations through boto3: parts of an object."""

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
