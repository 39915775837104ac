"""Content-Encoding naming aws-chunked: framing follows x-amz-content-sha256 alone, and
the stored encoding is what the client sent without the aws-chunked token."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib

import httpx
import pytest

from tests.e2e.conftest import USERS
from tests.e2e.helpers import sign

pytestmark = pytest.mark.e2e


def _put(cluster, bucket: str, key: str, body: bytes, headers: dict[str, str],
         payload: str) -> httpx.Response:
    url = f"{cluster.endpoint}/{bucket}/{key}"
    signed = sign("PUT", url, *USERS["alice"], headers, payload=payload)
    return httpx.put(url, content=body, headers=signed, timeout=30)


def test_boto3_gzip_aws_chunked_with_signed_payload(s3, bucket):
    """Over plain HTTP botocore signs the payload's SHA-256: the body is not aws-chunked."""
    data = os.urandom(70_000)
    s3.put_object(Bucket=bucket, Key="gz", Body=data, ContentEncoding="gzip, aws-chunked")
    got = s3.get_object(Bucket=bucket, Key="gz")
    assert got["Body"].read() == data and got["ContentEncoding"] == "gzip"
    assert s3.head_object(Bucket=bucket, Key="gz")["ContentEncoding"] == "gzip"


@pytest.mark.parametrize("payload", ["hex", "UNSIGNED-PAYLOAD"])
@pytest.mark.parametrize(("sent", "stored"), [("aws-chunked, gzip", "gzip"),
                                              ("gzip,aws-chunked,br", "gzip, br"),
                                              ("aws-chunked", None)])
def test_plain_body_with_aws_chunked_encoding(cluster, s3, bucket, payload, sent, stored):
    data = os.urandom(5000)
    declared = hashlib.sha256(data).hexdigest() if payload == "hex" else payload
    reply = _put(cluster, bucket, "plain", data, {"Content-Encoding": sent}, declared)
    assert reply.status_code == 200, reply.text
    got = s3.get_object(Bucket=bucket, Key="plain")
    assert got["Body"].read() == data
    assert got.get("ContentEncoding") == stored


def test_plain_body_with_aws_chunked_encoding_as_a_part(cluster, s3, bucket):
    data = os.urandom(5000)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="part",
                                     ContentEncoding="gzip")["UploadId"]
    reply = _put(cluster, bucket, f"part?partNumber=1&uploadId={uid}", data,
                 {"Content-Encoding": "gzip, aws-chunked"}, "UNSIGNED-PAYLOAD")
    assert reply.status_code == 200, reply.text
    s3.complete_multipart_upload(Bucket=bucket, Key="part", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": reply.headers["ETag"]}]})
    got = s3.get_object(Bucket=bucket, Key="part")
    assert got["Body"].read() == data and got["ContentEncoding"] == "gzip"


def test_real_aws_chunked_body_keeps_gzip(cluster, s3, bucket):
    data = os.urandom(100_000)
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    body = (f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n"
            + f"x-amz-checksum-crc32:{crc}\r\n\r\n".encode())
    reply = _put(cluster, bucket, "chunked", body, {
        "Content-Encoding": "gzip, aws-chunked", "x-amz-decoded-content-length": str(len(data)),
        "x-amz-trailer": "x-amz-checksum-crc32"}, "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    assert reply.status_code == 200, reply.text
    got = s3.get_object(Bucket=bucket, Key="chunked")
    assert got["Body"].read() == data and got["ContentEncoding"] == "gzip"


def test_streaming_payload_still_needs_decoded_length(cluster, s3, bucket):
    reply = _put(cluster, bucket, "nolen", b"0\r\n\r\n", {"Content-Encoding": "gzip"},
                 "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    assert reply.status_code == 411 and "MissingContentLength" in reply.text
