"""What crosses the wire: HTTPS with aws-chunked + trailing checksums, hand-signed chunked
uploads, HTTP/2 (h2c prior knowledge and h2 over TLS by ALPN)."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import ssl
import zlib
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.e2e import chunked_signer as cs
from tests.e2e.conftest import USERS

pytestmark = pytest.mark.e2e
MIB = 1 << 20


def _capture(client) -> list:
    seen = []
    client.meta.events.register("before-send.s3.PutObject", lambda request, **_: seen.append(
        {k.lower(): v.decode() if isinstance(v, bytes) else v
         for k, v in request.headers.items()}))
    return seen


def test_https_round_trips_use_aws_chunked_trailer(tls_cluster):
    s3 = tls_cluster.client(*USERS["alice"])
    seen = _capture(s3)
    s3.create_bucket(Bucket="tls-bucket")
    for size in (0, 1, MIB - 1, MIB + 1, 9 * MIB):
        data = os.urandom(size)
        put = s3.put_object(Bucket="tls-bucket", Key=f"o{size}", Body=data)
        assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
        assert s3.get_object(Bucket="tls-bucket", Key=f"o{size}")["Body"].read() == data
    headers = seen[-1]
    assert "aws-chunked" in headers["content-encoding"]
    assert headers["x-amz-trailer"] == "x-amz-checksum-crc32"
    assert headers["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"


def test_plain_http_sends_crc32_header(cluster, s3, bucket):
    seen = _capture(s3)
    s3.put_object(Bucket=bucket, Key="crc-header", Body=b"hello")
    headers = seen[-1]
    assert headers["x-amz-checksum-crc32"] == base64.b64encode(
        zlib.crc32(b"hello").to_bytes(4, "big")).decode()
    assert "x-amz-trailer" not in headers


def test_crc64nvme_trailer_over_https(tls_cluster):
    s3 = tls_cluster.client(*USERS["alice"])
    s3.create_bucket(Bucket="tls-crc64")
    data = os.urandom(3 * MIB + 5)
    put = s3.put_object(Bucket="tls-crc64", Key="c", Body=data, ChecksumAlgorithm="CRC64NVME")
    got = s3.get_object(Bucket="tls-crc64", Key="c", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got["ChecksumCRC64NVME"] == put["ChecksumCRC64NVME"]


def _raw_put(endpoint: str, path: str, headers: dict[str, str], body: bytes,
             tls: bool = False) -> tuple[int, bytes]:
    parts = urlsplit(endpoint)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    if tls:
        sock = ssl._create_unverified_context().wrap_socket(sock)
    with sock:
        head = f"PUT {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n"
                                                   for k, v in headers.items()) + "\r\n"
        sock.sendall(head.encode() + body)
        response = b""
        while b"\r\n\r\n" not in response:
            response += sock.recv(65536)
        head_part, _, rest = response.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head_part.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(rest) < length:
            rest += sock.recv(65536)
        return int(head_part.split()[1]), rest


def test_signer_reproduces_aws_streaming_example():
    headers = {"Host": "s3.amazonaws.com", "x-amz-date": "20130524T000000Z",
               "x-amz-storage-class": "REDUCED_REDUNDANCY",
               "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
               "Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": "66560",
               "Content-Length": "66824"}
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    seed, _, scope = cs.seed_signature("PUT", "/examplebucket/chunkObject.txt", headers, secret,
                                       "20130524T000000Z", "us-east-1",
                                       "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    assert seed == "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    body = cs.chunked_body(b"a" * 66560, 65536, cs.signing_key(secret, "20130524", "us-east-1"),
                           "20130524T000000Z", scope, seed)
    assert len(body) == 66824 == cs.chunked_length(66560, 65536)
    for sig in ("ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
                "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
                "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"):
        assert sig.encode() in body


def _signed_chunk_upload(cluster, bucket: str, key: str, data: bytes, tamper: bool = False):
    access, secret = USERS["alice"]
    amz_date = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    chunk = 64 * 1024
    host = urlsplit(cluster.endpoint).netloc
    headers = {"Host": host, "x-amz-date": amz_date,
               "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
               "Content-Encoding": "aws-chunked",
               "x-amz-decoded-content-length": str(len(data)),
               "Content-Length": str(cs.chunked_length(len(data), chunk))}
    path = f"/{bucket}/{key}"
    seed, signed, scope = cs.seed_signature("PUT", path, headers, secret, amz_date, "us-east-1",
                                            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    body = cs.chunked_body(data, chunk, cs.signing_key(secret, amz_date[:8], "us-east-1"),
                           amz_date, scope, seed)
    if tamper:
        body = body.replace(data[1000:1010], bytes(10), 1)
    headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={access}/{scope}, "
                                f"SignedHeaders={signed}, Signature={seed}")
    return _raw_put(cluster.endpoint, path, headers, body)


def test_hand_signed_chunked_upload(cluster, s3, bucket):
    data = os.urandom(300_000)
    status, _ = _signed_chunk_upload(cluster, bucket, "signed-chunks", data)
    assert status == 200
    assert s3.get_object(Bucket=bucket, Key="signed-chunks")["Body"].read() == data
    status, body = _signed_chunk_upload(cluster, bucket, "signed-chunks", os.urandom(300_000),
                                        tamper=True)
    assert status == 403 and b"SignatureDoesNotMatch" in body
    assert s3.get_object(Bucket=bucket, Key="signed-chunks")["Body"].read() == data


def test_wrong_trailing_checksum_is_bad_digest(tls_cluster):
    s3 = tls_cluster.client(*USERS["alice"])
    s3.create_bucket(Bucket="tls-trailer")
    s3.put_object(Bucket="tls-trailer", Key="t", Body=b"original")
    from tests.e2e.helpers import sign

    data = os.urandom(100_000)
    wrong = base64.b64encode((zlib.crc32(data) ^ 1).to_bytes(4, "big")).decode()
    body = (f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n"
            + f"x-amz-checksum-crc32:{wrong}\r\n\r\n".encode())
    url = f"{tls_cluster.endpoint}/tls-trailer/t"
    headers = sign("PUT", url, *USERS["alice"], {
        "Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data)),
        "x-amz-trailer": "x-amz-checksum-crc32", "Content-Length": str(len(body))},
        payload="STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    status, reply = _raw_put(tls_cluster.endpoint, "/tls-trailer/t", headers, body, tls=True)
    assert status == 400 and b"<Code>BadDigest</Code>" in reply
    assert s3.get_object(Bucket="tls-trailer", Key="t")["Body"].read() == b"original"


def _presigned(cluster, bucket: str, key: str) -> str:
    signer = cluster.client(*USERS["alice"], signature_version="s3v4")
    return signer.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                         ExpiresIn=300)


def test_h2c_prior_knowledge_get(cluster, s3, bucket):
    data = os.urandom(2 * MIB + 3)
    s3.put_object(Bucket=bucket, Key="h2c", Body=data)
    with httpx.Client(http1=False, http2=True) as client:
        response = client.get(_presigned(cluster, bucket, "h2c"))
    assert response.http_version == "HTTP/2"
    assert response.status_code == 200 and response.content == data


def test_h2_over_tls_by_alpn(tls_cluster):
    s3 = tls_cluster.client(*USERS["alice"])
    s3.create_bucket(Bucket="tls-h2")
    data = os.urandom(MIB + 7)
    s3.put_object(Bucket="tls-h2", Key="h2", Body=data)
    with httpx.Client(http2=True, verify=False) as client:
        response = client.get(_presigned(tls_cluster, "tls-h2", "h2"))
    assert response.http_version == "HTTP/2"
    assert response.content == data


def test_tls_bad_signature_still_rejected(tls_cluster):
    bad = tls_cluster.client(USERS["alice"][0], "wrong-secret")
    with pytest.raises(ClientError) as err:
        bad.list_buckets()
    assert err.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_unsigned_trailer_with_http_chunking_and_expect_continue(cluster, s3, bucket):
    """Transfer-Encoding: chunked around an aws-chunked body, no Content-Length, and
    Expect: 100-continue: the body is sent only after the interim 100 answer."""
    data = os.urandom(200_000)
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    inner = (f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n"
             + f"x-amz-checksum-crc32:{crc}\r\n\r\n".encode())
    from tests.e2e.helpers import sign

    url = f"{cluster.endpoint}/{bucket}/te-chunked"
    headers = sign("PUT", url, *USERS["alice"], {
        "Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data)),
        "x-amz-trailer": "x-amz-checksum-crc32", "Transfer-Encoding": "chunked",
        "Expect": "100-continue"}, payload="STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    parts = urlsplit(cluster.endpoint)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        head = f"PUT /{bucket}/te-chunked HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        sock.sendall(head.encode())
        interim = sock.recv(4096)
        assert interim.startswith(b"HTTP/1.1 100")
        for i in range(0, len(inner), 50_000):  # HTTP chunks cut across aws chunks
            piece = inner[i:i + 50_000]
            sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 200"), reply[:300]
    got = s3.get_object(Bucket=bucket, Key="te-chunked", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got["ChecksumCRC32"] == crc
