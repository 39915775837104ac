"""Multipart uploads through boto3: transfer manager, errors, checksums, listing parts."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import zlib

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

pytestmark = pytest.mark.e2e
MIB = 1 << 20


def test_transfer_manager_multipart(s3, bucket):
    data = os.urandom(21 * MIB + 3)
    cfg = TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB)
    s3.upload_fileobj(io.BytesIO(data), bucket, "mp", Config=cfg)
    head = s3.head_object(Bucket=bucket, Key="mp")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].endswith('-3"')
    out = io.BytesIO()
    s3.download_fileobj(bucket, "mp", out, Config=cfg)
    assert out.getvalue() == data
    ranged = s3.get_object(Bucket=bucket, Key="mp", Range=f"bytes={8 * MIB - 5}-{8 * MIB + 4}")
    assert ranged["Body"].read() == data[8 * MIB - 5:8 * MIB + 5]


def test_multipart_crc32_composite(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="crc", ChecksumAlgorithm="CRC32")
    uid = up["UploadId"]
    parts_data = [os.urandom(5 * MIB), os.urandom(1234)]
    parts = []
    for n, chunk in enumerate(parts_data, 1):
        r = s3.upload_part(Bucket=bucket, Key="crc", UploadId=uid, PartNumber=n, Body=chunk,
                           ChecksumAlgorithm="CRC32")
        expected = base64.b64encode(zlib.crc32(chunk).to_bytes(4, "big")).decode()
        assert r["ChecksumCRC32"] == expected
        parts.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})
    listed = s3.list_parts(Bucket=bucket, Key="crc", UploadId=uid)
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2]
    done = s3.complete_multipart_upload(Bucket=bucket, Key="crc", UploadId=uid,
                                        MultipartUpload={"Parts": parts})
    digests = b"".join(zlib.crc32(c).to_bytes(4, "big") for c in parts_data)
    composite = base64.b64encode(zlib.crc32(digests).to_bytes(4, "big")).decode() + "-2"
    assert done["ChecksumCRC32"] == composite
    md5s = b"".join(hashlib.md5(c).digest() for c in parts_data)
    assert done["ETag"] == f'"{hashlib.md5(md5s).hexdigest()}-2"'
    got = s3.get_object(Bucket=bucket, Key="crc")
    assert got["Body"].read() == b"".join(parts_data)


def test_multipart_errors(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="err")["UploadId"]
    small = s3.upload_part(Bucket=bucket, Key="err", UploadId=uid, PartNumber=1, Body=b"tiny")
    last = s3.upload_part(Bucket=bucket, Key="err", UploadId=uid, PartNumber=2, Body=b"end")

    def complete(parts):
        with pytest.raises(ClientError) as err:
            s3.complete_multipart_upload(Bucket=bucket, Key="err", UploadId=uid,
                                         MultipartUpload={"Parts": parts})
        return err.value.response["Error"]["Code"]

    assert complete([{"PartNumber": 1, "ETag": small["ETag"]},
                     {"PartNumber": 2, "ETag": last["ETag"]}]) == "EntityTooSmall"
    assert complete([{"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'}]) \
        == "InvalidPart"
    assert complete([{"PartNumber": 2, "ETag": last["ETag"]},
                     {"PartNumber": 1, "ETag": small["ETag"]}]) == "InvalidPartOrder"
    s3.abort_multipart_upload(Bucket=bucket, Key="err", UploadId=uid)
    with pytest.raises(ClientError) as err:
        s3.list_parts(Bucket=bucket, Key="err", UploadId=uid)
    assert err.value.response["Error"]["Code"] == "NoSuchUpload"
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="err")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_a_part_listed_twice_counts_once_the_last(s3, bucket):
    """A client that re-sent part 1 may list it twice; the last entry names the part."""
    upload = s3.create_multipart_upload(Bucket=bucket, Key="twice")["UploadId"]
    old = s3.upload_part(Bucket=bucket, Key="twice", UploadId=upload, PartNumber=1,
                         Body=b"B" * 8)["ETag"]
    new = s3.upload_part(Bucket=bucket, Key="twice", UploadId=upload, PartNumber=1,
                         Body=b"A" * 8)["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="twice", UploadId=upload,
                                 MultipartUpload={"Parts": [
                                     {"PartNumber": 1, "ETag": old},
                                     {"PartNumber": 1, "ETag": new}]})
    assert s3.get_object(Bucket=bucket, Key="twice")["Body"].read() == b"A" * 8
