"""gateway.object_headers: what a PUT keeps, and what GET/HEAD answer with."""

from __future__ import annotations

import pytest

from gateway.errors import S3Error
from gateway.object_headers import MAX_USER_METADATA, object_headers, stored_headers
from shardgate.manifest import ObjectManifest


def test_defaults_without_headers() -> None:
    assert stored_headers({}) == ("binary/octet-stream", {}, {})
    assert stored_headers({"content-type": ""})[0] == "binary/octet-stream"


def test_kept_headers_and_metadata() -> None:
    content_type, kept, metadata = stored_headers({
        "content-type": "text/plain; charset=utf-8",
        "cache-control": "max-age=60", "content-disposition": 'attachment; filename="a b"',
        "content-language": "fr", "expires": "Thu, 01 Dec 1994 16:00:00 GMT",
        "x-amz-storage-class": "STANDARD", "x-amz-website-redirect-location": "/other",
        "x-amz-meta-color": "red", "x-amz-meta-Empty": "",
        "authorization": "AWS4-HMAC-SHA256 ...", "x-amz-date": "20240101T000000Z",
        "content-length": "5", "host": "localhost", "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
    })
    assert content_type == "text/plain; charset=utf-8"
    assert kept == {"cache-control": "max-age=60",
                    "content-disposition": 'attachment; filename="a b"',
                    "content-language": "fr", "expires": "Thu, 01 Dec 1994 16:00:00 GMT",
                    "x-amz-website-redirect-location": "/other",
                    "x-amz-storage-class": "STANDARD"}
    assert metadata == {"color": "red", "Empty": ""}


@pytest.mark.parametrize(("sent", "stored"), [
    ("aws-chunked", None),
    ("aws-chunked,gzip", "gzip"),
    ("gzip, aws-chunked", "gzip"),
    ("aws-chunked, gzip, br", "gzip, br"),
    ("gzip", "gzip"),
    (" , aws-chunked , ", None),
])
def test_aws_chunked_is_stripped_from_content_encoding(sent: str, stored: str | None) -> None:
    _, kept, _ = stored_headers({"content-encoding": sent})
    assert kept.get("content-encoding") == stored
    assert ("content-encoding" in kept) == (stored is not None)


def test_metadata_limit_is_2kb_of_names_and_values() -> None:
    name = "k"  # header x-amz-meta-k: only "k" counts
    at_limit = {f"x-amz-meta-{name}": "v" * (MAX_USER_METADATA - len(name))}
    assert stored_headers(at_limit)[2] == {name: "v" * (MAX_USER_METADATA - 1)}
    over = {f"x-amz-meta-{name}": "v" * (MAX_USER_METADATA - len(name) + 1)}
    with pytest.raises(S3Error) as exc:
        stored_headers(over)
    assert exc.value.code == "InvalidArgument" and exc.value.status == 400
    spread = {f"x-amz-meta-m{i:03d}": "x" * 60 for i in range(32)}  # 32 * 64 = 2048
    assert len(stored_headers(spread)[2]) == 32
    spread["x-amz-meta-z"] = ""
    with pytest.raises(S3Error):
        stored_headers(spread)


def manifest(**changes: object) -> ObjectManifest:
    base = ObjectManifest(
        bucket="b", incarnation="i", key="k", version_id="0" * 32,
        last_modified=784111777.5, owner="alice", size=3, etag="abc",
        content_type="text/plain",
        headers={"cache-control": "no-cache", "x-amz-storage-class": "STANDARD"},
        metadata={"color": "red"}, checksums={"CRC32": "AAAAAA==", "SHA256": "c2hh"},
        checksum_type="FULL_OBJECT")
    return base.with_changes(**changes) if changes else base


def test_object_headers_without_checksum() -> None:
    assert object_headers(manifest(), with_checksum=False) == {
        "ETag": '"abc"', "Last-Modified": "Sun, 06 Nov 1994 08:49:37 GMT",
        "Content-Type": "text/plain", "Accept-Ranges": "bytes",
        "cache-control": "no-cache", "x-amz-meta-color": "red",
    }


def test_object_headers_with_checksum() -> None:
    headers = object_headers(manifest(), with_checksum=True)
    assert headers["x-amz-checksum-crc32"] == "AAAAAA=="
    assert headers["x-amz-checksum-sha256"] == "c2hh"
    assert headers["x-amz-checksum-type"] == "FULL_OBJECT"


def test_checksum_type_needs_a_checksum() -> None:
    headers = object_headers(manifest(checksums={}), with_checksum=True)
    assert not any(h.startswith("x-amz-checksum") for h in headers)
    headers = object_headers(manifest(checksum_type=""), with_checksum=True)
    assert "x-amz-checksum-type" not in headers and "x-amz-checksum-crc32" in headers


def test_non_standard_storage_class_is_shown() -> None:
    m = manifest(headers={"x-amz-storage-class": "REDUCED_REDUNDANCY"})
    assert object_headers(m, False)["x-amz-storage-class"] == "REDUCED_REDUNDANCY"


def test_multipart_etag_is_quoted() -> None:
    assert object_headers(manifest(etag="abc-12"), False)["ETag"] == '"abc-12"'
