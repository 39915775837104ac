"""CompleteMultipartUpload: the whole-object checksum headers and If-Match /
If-None-Match, as AWS answers them, through boto3."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib

import pytest
from awscrt import checksums as crt
from botocore.exceptions import ClientError

pytestmark = pytest.mark.e2e
MIB = 1 << 20
PARTS = [os.urandom(5 * MIB), os.urandom(4321)]

CRC = {"CRC32": lambda d: zlib.crc32(d).to_bytes(4, "big"),
       "CRC32C": lambda d: crt.crc32c(d).to_bytes(4, "big"),
       "CRC64NVME": lambda d: crt.crc64nvme(d).to_bytes(8, "big")}


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _upload(s3, bucket, key, algorithm=None, checksum_type=None, parts=PARTS):
    """An open upload with `parts` uploaded; returns (upload id, Parts for Complete)."""
    create = {"Bucket": bucket, "Key": key}
    if algorithm:
        create["ChecksumAlgorithm"] = algorithm
    if checksum_type:
        create["ChecksumType"] = checksum_type
    uid = s3.create_multipart_upload(**create)["UploadId"]
    done = []
    for n, data in enumerate(parts, 1):
        extra = {"ChecksumAlgorithm": algorithm} if algorithm else {}
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=n, Body=data,
                           **extra)
        entry = {"PartNumber": n, "ETag": r["ETag"]}
        if algorithm:
            entry[f"Checksum{algorithm}"] = r[f"Checksum{algorithm}"]
        done.append(entry)
    return uid, done


def _error(call) -> str:
    with pytest.raises(ClientError) as err:
        call()
    return err.value.response["Error"]["Code"]


def _absent(s3, bucket, key) -> bool:
    return _error(lambda: s3.head_object(Bucket=bucket, Key=key)) == "404"


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME"])
def test_full_object_checksum_on_complete(s3, bucket, algorithm):
    uid, parts = _upload(s3, bucket, "full", algorithm, "FULL_OBJECT")
    whole = _b64(CRC[algorithm](b"".join(PARTS)))
    wrong = _b64(CRC[algorithm](b"other"))
    assert _error(lambda: s3.complete_multipart_upload(
        Bucket=bucket, Key="full", UploadId=uid, MultipartUpload={"Parts": parts},
        ChecksumType="FULL_OBJECT", **{f"Checksum{algorithm}": wrong})) == "BadDigest"
    assert _absent(s3, bucket, "full")
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="full", UploadId=uid, MultipartUpload={"Parts": parts},
        ChecksumType="FULL_OBJECT", **{f"Checksum{algorithm}": whole})
    assert done[f"Checksum{algorithm}"] == whole and done["ChecksumType"] == "FULL_OBJECT"
    got = s3.get_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")
    assert got["Body"].read() == b"".join(PARTS) and got[f"Checksum{algorithm}"] == whole


def test_full_object_crc_without_an_algorithm_on_create(s3, bucket):
    """boto3 sends CRC32 with every part by default: the object gets their combined CRC."""
    uid = s3.create_multipart_upload(Bucket=bucket, Key="default")["UploadId"]
    parts = []
    for n, data in enumerate(PARTS, 1):
        r = s3.upload_part(Bucket=bucket, Key="default", UploadId=uid, PartNumber=n,
                           Body=data, ChecksumAlgorithm="CRC32")
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    whole = _b64(CRC["CRC32"](b"".join(PARTS)))
    done = s3.complete_multipart_upload(Bucket=bucket, Key="default", UploadId=uid,
                                        MultipartUpload={"Parts": parts}, ChecksumCRC32=whole)
    assert done["ChecksumCRC32"] == whole


@pytest.mark.parametrize("algorithm", ["SHA256", "SHA1", "CRC32"])
def test_composite_checksum_on_complete(s3, bucket, algorithm):
    digest = {"SHA256": lambda d: hashlib.sha256(d).digest(),
              "SHA1": lambda d: hashlib.sha1(d).digest(), "CRC32": CRC["CRC32"]}[algorithm]
    uid, parts = _upload(s3, bucket, "comp", algorithm)
    value = _b64(digest(b"".join(digest(p) for p in PARTS)))
    for wrong in (f"{value[:-4]}AAA=-2" if algorithm != "CRC32" else "AAAAAA==-2",
                  f"{value}-3"):
        assert _error(lambda w=wrong: s3.complete_multipart_upload(
            Bucket=bucket, Key="comp", UploadId=uid, MultipartUpload={"Parts": parts},
            **{f"Checksum{algorithm}": w})) == "BadDigest"
    assert _absent(s3, bucket, "comp")
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="comp", UploadId=uid, MultipartUpload={"Parts": parts},
        ChecksumType="COMPOSITE", **{f"Checksum{algorithm}": f"{value}-2"})
    assert done[f"Checksum{algorithm}"] == f"{value}-2"
    assert done["ChecksumType"] == "COMPOSITE"


def test_complete_checksum_disagreements(s3, bucket):
    uid, parts = _upload(s3, bucket, "dis", "CRC32", "FULL_OBJECT")
    whole = _b64(CRC["CRC32"](b"".join(PARTS)))

    def complete(**extra):
        return s3.complete_multipart_upload(Bucket=bucket, Key="dis", UploadId=uid,
                                            MultipartUpload={"Parts": parts}, **extra)

    sha = _b64(hashlib.sha256(b"x").digest())
    assert _error(lambda: complete(ChecksumSHA256=sha)) == "InvalidRequest"
    assert _error(lambda: complete(ChecksumCRC32="not-base64!")) == "BadDigest"
    assert _error(lambda: complete(ChecksumCRC32=whole, ChecksumType="COMPOSITE")) \
        == "BadDigest"
    assert _error(lambda: complete(ChecksumCRC32=f"{whole}-2")) == "BadDigest"
    assert _absent(s3, bucket, "dis")
    assert complete(ChecksumCRC32=whole)["ChecksumCRC32"] == whole


def test_if_none_match_on_complete(s3, bucket):
    s3.put_object(Bucket=bucket, Key="taken", Body=b"first")
    uid, parts = _upload(s3, bucket, "taken", parts=[b"second"])
    with pytest.raises(ClientError) as err:
        s3.complete_multipart_upload(Bucket=bucket, Key="taken", UploadId=uid,
                                     MultipartUpload={"Parts": parts}, IfNoneMatch="*")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert err.value.response["Error"]["Code"] == "PreconditionFailed"
    assert s3.get_object(Bucket=bucket, Key="taken")["Body"].read() == b"first"
    assert [p["PartNumber"] for p in s3.list_parts(Bucket=bucket, Key="taken",
                                                   UploadId=uid)["Parts"]] == [1]
    s3.complete_multipart_upload(Bucket=bucket, Key="taken", UploadId=uid,
                                 MultipartUpload={"Parts": parts})
    assert s3.get_object(Bucket=bucket, Key="taken")["Body"].read() == b"second"
    uid, parts = _upload(s3, bucket, "free", parts=[b"new"])
    first = s3.complete_multipart_upload(Bucket=bucket, Key="free", UploadId=uid,
                                         MultipartUpload={"Parts": parts}, IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="free")["Body"].read() == b"new"
    retried = s3.complete_multipart_upload(Bucket=bucket, Key="free", UploadId=uid,
                                           MultipartUpload={"Parts": parts}, IfNoneMatch="*")
    assert retried["ETag"] == first["ETag"]  # a retry after success answers the same


def test_if_match_on_complete(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="m", Body=b"first")["ETag"]
    uid, parts = _upload(s3, bucket, "m", parts=[b"second"])

    def complete(**extra):
        return s3.complete_multipart_upload(Bucket=bucket, Key="m", UploadId=uid,
                                            MultipartUpload={"Parts": parts}, **extra)

    with pytest.raises(ClientError) as err:
        complete(IfMatch='"0123456789abcdef0123456789abcdef"')
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert s3.get_object(Bucket=bucket, Key="m")["Body"].read() == b"first"
    assert complete(IfMatch=etag)["Key"] == "m"
    assert s3.get_object(Bucket=bucket, Key="m")["Body"].read() == b"second"
    uid, parts = _upload(s3, bucket, "missing", parts=[b"x"])
    with pytest.raises(ClientError) as err:
        s3.complete_multipart_upload(Bucket=bucket, Key="missing", UploadId=uid,
                                     MultipartUpload={"Parts": parts}, IfMatch=etag)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert err.value.response["Error"]["Code"] == "NoSuchKey"
    s3.list_parts(Bucket=bucket, Key="missing", UploadId=uid)  # still open
