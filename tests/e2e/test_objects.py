"""Object round trips, ranges, conditions, metadata and odd keys through boto3."""

from __future__ import annotations

import hashlib
import os

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.e2e

SEG = 1 << 20


def code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


@pytest.mark.parametrize("size", [0, 1, SEG - 1, SEG, SEG + 1, 3 * SEG + 12345])
def test_round_trip_sizes(s3, bucket, size):
    data = os.urandom(size)
    put = s3.put_object(Bucket=bucket, Key=f"obj-{size}", Body=data)
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key=f"obj-{size}")
    assert got["Body"].read() == data
    assert got["ContentLength"] == size
    head = s3.head_object(Bucket=bucket, Key=f"obj-{size}")
    assert head["ContentLength"] == size and head["ETag"] == put["ETag"]


def test_round_trip_64mib(s3, bucket):
    data = os.urandom(64 * SEG)
    s3.put_object(Bucket=bucket, Key="big", Body=data)
    body = s3.get_object(Bucket=bucket, Key="big")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()


def test_ranges(s3, bucket):
    size = 3 * SEG + 777
    data = os.urandom(size)
    s3.put_object(Bucket=bucket, Key="r", Body=data)
    cases = {
        f"bytes={SEG - 10}-{SEG + 10}": data[SEG - 10:SEG + 11],        # across a boundary
        f"bytes={SEG - 1}-{2 * SEG}": data[SEG - 1:2 * SEG + 1],        # three segments
        "bytes=0-0": data[:1],
        f"bytes={size - 1}-": data[size - 1:],                           # open-ended, last byte
        f"bytes={2 * SEG}-": data[2 * SEG:],
        "bytes=-100": data[-100:],                                        # suffix
        f"bytes=-{size + 50}": data,                                      # suffix beyond size
        f"bytes=10-{size + 1000}": data[10:],                             # end clamped
    }
    for header, expected in cases.items():
        got = s3.get_object(Bucket=bucket, Key="r", Range=header)
        assert got["Body"].read() == expected, header
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
        start = size - len(expected) if header.startswith("bytes=-") else \
            int(header[6:].split("-")[0])
        assert got["ContentRange"] == f"bytes {start}-{start + len(expected) - 1}/{size}"
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={size}-")
    assert code(err.value) == "InvalidRange"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 416


def test_conditional_get(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="c", Body=b"conditional")
    etag = put["ETag"]
    head = s3.head_object(Bucket=bucket, Key="c")
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"conditional"
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"0000"')
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=head["LastModified"])
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    import datetime

    past = head["LastModified"] - datetime.timedelta(days=1)
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="c", IfUnmodifiedSince=past)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="c", IfMatch='"0000"')
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    # ranged GET with If-Match, as s3transfer sends it
    got = s3.get_object(Bucket=bucket, Key="c", IfMatch=etag, Range="bytes=0-3")
    assert got["Body"].read() == b"cond"


def test_metadata_and_content_type(s3, bucket):
    s3.put_object(Bucket=bucket, Key="m", Body=b"x", ContentType="text/plain",
                  Metadata={"owner": "team-a", "run": "42"}, CacheControl="max-age=60")
    head = s3.head_object(Bucket=bucket, Key="m")
    assert head["ContentType"] == "text/plain"
    assert head["Metadata"] == {"owner": "team-a", "run": "42"}
    assert head["CacheControl"] == "max-age=60"


@pytest.mark.parametrize("key", ["with space", "plus+sign", "per%cent", "ünïcødé/ключ",
                                 "double//slash", "/leading", "a?b=c&d", "tilde~star*"])
def test_odd_keys(s3, bucket, key):
    s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key[:3])
    assert key in [o["Key"] for o in listed.get("Contents", [])]


def test_key_too_long(s3, bucket):
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x")
    assert code(err.value) == "KeyTooLongError"


def test_missing_key_and_bucket(s3, bucket):
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="nope")
    assert code(err.value) == "NoSuchKey"
    assert err.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket="no-such-bucket-xyz", Key="nope")
    assert code(err.value) == "NoSuchBucket"


def test_content_md5_bad_digest(s3, bucket):
    import base64

    s3.put_object(Bucket=bucket, Key="md5", Body=b"old")
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="md5", Body=b"new", ContentMD5=wrong)
    assert code(err.value) == "BadDigest"
    assert s3.get_object(Bucket=bucket, Key="md5")["Body"].read() == b"old"


def test_overwrite_and_delete(s3, bucket):
    s3.put_object(Bucket=bucket, Key="o", Body=b"one")
    s3.put_object(Bucket=bucket, Key="o", Body=b"two")
    assert s3.get_object(Bucket=bucket, Key="o")["Body"].read() == b"two"
    s3.delete_object(Bucket=bucket, Key="o")
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="o")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    s3.delete_object(Bucket=bucket, Key="never-existed")


def test_checksum_mode(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="ck", Body=b"checksum me", ChecksumAlgorithm="SHA256")
    got = s3.get_object(Bucket=bucket, Key="ck", ChecksumMode="ENABLED")
    assert got["Body"].read() == b"checksum me"
    assert got["ChecksumSHA256"] == put["ChecksumSHA256"]
    ranged = s3.get_object(Bucket=bucket, Key="ck", ChecksumMode="ENABLED", Range="bytes=0-3")
    assert "ChecksumSHA256" not in ranged
    head = s3.head_object(Bucket=bucket, Key="ck", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == put["ChecksumSHA256"]


def test_conditional_put(s3, bucket):
    first = s3.put_object(Bucket=bucket, Key="cond-put", Body=b"one", IfNoneMatch="*")
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="cond-put", Body=b"two", IfNoneMatch="*")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="cond-put", Body=b"two", IfMatch='"0000"')
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    s3.put_object(Bucket=bucket, Key="cond-put", Body=b"three", IfMatch=first["ETag"])
    assert s3.get_object(Bucket=bucket, Key="cond-put")["Body"].read() == b"three"
