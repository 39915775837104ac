"""gateway.router: request line -> typed Endpoint, key decoding, refused sub-resources."""

from __future__ import annotations

import pytest

from gateway.errors import S3Error
from gateway.router import MAX_KEY_BYTES, Endpoint, route, split_path


@pytest.mark.parametrize(("method", "path", "query", "operation"), [
    ("GET", "/", "", "ListBuckets"),
    ("HEAD", "/", "", "ListBuckets"),
    ("PUT", "/bkt", "", "CreateBucket"),
    ("PUT", "/bkt/", "", "CreateBucket"),
    ("HEAD", "/bkt", "", "HeadBucket"),
    ("DELETE", "/bkt", "", "DeleteBucket"),
    ("GET", "/bkt", "location", "GetBucketLocation"),
    ("GET", "/bkt", "location=", "GetBucketLocation"),
    ("GET", "/bkt", "versioning", "GetBucketVersioning"),
    ("GET", "/bkt", "list-type=2", "ListObjectsV2"),
    ("GET", "/bkt", "list-type=2&prefix=a%2F&delimiter=%2F", "ListObjectsV2"),
    ("GET", "/bkt", "", "ListObjects"),
    ("GET", "/bkt/", "prefix=x", "ListObjects"),
    ("GET", "/bkt", "list-type=1", "ListObjects"),
    ("GET", "/bkt", "uploads", "ListMultipartUploads"),
    ("POST", "/bkt", "delete", "DeleteObjects"),
    ("POST", "/bkt", "delete=", "DeleteObjects"),
    ("PUT", "/bkt/key", "", "PutObject"),
    ("PUT", "/bkt/key", "partNumber=1&uploadId=abc", "UploadPart"),
    ("GET", "/bkt/key", "", "GetObject"),
    ("GET", "/bkt/key", "partNumber=2", "GetObject"),
    ("GET", "/bkt/key", "uploadId=abc", "ListParts"),
    ("HEAD", "/bkt/key", "", "HeadObject"),
    ("POST", "/bkt/key", "uploads", "CreateMultipartUpload"),
    ("POST", "/bkt/key", "uploads=", "CreateMultipartUpload"),
    ("POST", "/bkt/key", "uploadId=abc", "CompleteMultipartUpload"),
    ("DELETE", "/bkt/key", "uploadId=abc", "AbortMultipartUpload"),
    ("DELETE", "/bkt/key", "", "DeleteObject"),
])
def test_operation_mapping(method: str, path: str, query: str, operation: str) -> None:
    ep = route(method, path, query)
    assert ep.operation == operation
    assert ep.bucket == ("" if path == "/" else "bkt")
    assert ep.key == ("key" if path.startswith("/bkt/key") else "")


def test_query_is_kept_decoded_in_order() -> None:
    ep = route("GET", "/bkt", "list-type=2&prefix=a%2Fb&delimiter=%2F&start-after=")
    assert ep.query == (("list-type", "2"), ("prefix", "a/b"), ("delimiter", "/"),
                        ("start-after", ""))
    assert ep.param("prefix") == "a/b"
    assert ep.param("start-after") == ""
    assert ep.param("missing") is None and ep.param("missing", "d") == "d"
    assert ep.has("start-after") and not ep.has("marker")


def test_query_string_on_the_raw_path_is_ignored() -> None:
    assert route("GET", "/bkt/key?uploadId=1", "").operation == "GetObject"


@pytest.mark.parametrize(("raw", "key"), [
    ("/bkt/a%2Fb", "a/b"),
    ("/bkt/a/b/c.txt", "a/b/c.txt"),
    ("/bkt/my%20file.txt", "my file.txt"),
    ("/bkt/a+b", "a+b"),                     # '+' in a path is a literal plus
    ("/bkt/a%2Bb", "a+b"),
    ("/bkt/a//b", "a//b"),                   # '//' is kept
    ("/bkt//lead", "/lead"),
    ("/bkt/trail/", "trail/"),
    ("/bkt/%C3%A9t%C3%A9/%E6%97%A5%E6%9C%AC", "été/日本"),
    ("/bkt/%F0%9F%98%80", "😀"),
    ("/bkt/100%25", "100%"),
    ("/bkt/%3F%23%26", "?#&"),
])
def test_key_decoding(raw: str, key: str) -> None:
    ep = route("GET", raw, "")
    assert (ep.bucket, ep.key) == ("bkt", key)


def test_invalid_utf8_in_path_is_invalid_uri() -> None:
    with pytest.raises(S3Error) as exc:
        route("GET", "/bkt/%FF%FE", "")
    assert exc.value.code == "InvalidURI" and exc.value.status == 400


def test_key_length_limit_counts_utf8_bytes() -> None:
    assert route("PUT", "/bkt/" + "a" * MAX_KEY_BYTES, "").key == "a" * MAX_KEY_BYTES
    assert len(route("PUT", "/bkt/" + "%C3%A9" * 512, "").key) == 512  # 1024 bytes
    with pytest.raises(S3Error) as exc:
        route("PUT", "/bkt/" + "a" * (MAX_KEY_BYTES + 1), "")
    assert exc.value.code == "KeyTooLongError"
    assert exc.value.extra == {"Size": "1025", "MaxSizeAllowed": "1024"}
    with pytest.raises(S3Error, match="KeyTooLongError"):
        route("GET", "/bkt/" + "%C3%A9" * 513, "")  # 513 characters, 1026 bytes


@pytest.mark.parametrize(("method", "path", "query"), [
    ("PUT", "/bkt", "lifecycle"),
    ("GET", "/bkt", "policy"),
    ("POST", "/bkt/key", "restore"),
])
def test_unsupported_subresources_are_not_implemented(method: str, path: str,
                                                      query: str) -> None:
    with pytest.raises(S3Error) as exc:
        route(method, path, query)
    assert exc.value.code == "NotImplemented" and exc.value.status == 501


@pytest.mark.parametrize(("method", "path", "query", "headers", "operation"), [
    ("PUT", "/bkt/key", "", {"x-amz-copy-source": "/other/key"}, "CopyObject"),
    ("PUT", "/bkt/key", "partNumber=1&uploadId=u", {"x-amz-copy-source": "/o/k"},
     "UploadPartCopy"),
    ("GET", "/bkt", "tagging", {}, "GetBucketTagging"),
    ("GET", "/bkt", "cors", {}, "GetBucketCors"),
    ("PUT", "/bkt", "cors", {}, "PutBucketCors"),
    ("DELETE", "/bkt", "cors", {}, "DeleteBucketCors"),
    ("OPTIONS", "/bkt/key", "X-Amz-Signature=s", {}, "PreflightCors"),
    ("OPTIONS", "/bkt", "", {}, "PreflightCors"),
    ("PUT", "/bkt", "tagging", {}, "PutBucketTagging"),
    ("DELETE", "/bkt", "tagging", {}, "DeleteBucketTagging"),
    ("PUT", "/bkt/key", "tagging", {}, "PutObjectTagging"),
    ("GET", "/bkt/key", "tagging&versionId=v", {}, "GetObjectTagging"),
    ("DELETE", "/bkt/key", "tagging", {}, "DeleteObjectTagging"),
    ("GET", "/bkt/key", "attributes", {}, "GetObjectAttributes"),
    ("GET", "/bkt", "versions", {}, "ListObjectVersions"),
    ("PUT", "/bkt", "versioning", {}, "PutBucketVersioning"),
    ("GET", "/bkt", "versioning", {}, "GetBucketVersioning"),
    ("GET", "/bkt", "acl", {}, "GetBucketAcl"),
    ("PUT", "/bkt", "acl", {}, "PutBucketAcl"),
    ("GET", "/bkt/key", "acl", {}, "GetObjectAcl"),
    ("PUT", "/bkt/key", "acl=", {}, "PutObjectAcl"),
])
def test_object_surface_operations(method: str, path: str, query: str,
                                   headers: dict[str, str], operation: str) -> None:
    assert route(method, path, query, headers=headers).operation == operation


@pytest.mark.parametrize(("method", "path", "query"), [
    ("PUT", "/", ""),
    ("DELETE", "/", ""),
    ("POST", "/bkt", ""),
    ("PATCH", "/bkt", ""),
    ("POST", "/bkt/key", ""),
    ("PATCH", "/bkt/key", ""),
    ("OPTIONS", "/", ""),
    ("POST", "/bkt", "tagging"),
    ("DELETE", "/bkt/key", "acl"),
])
def test_other_methods_are_not_allowed(method: str, path: str, query: str) -> None:
    with pytest.raises(S3Error) as exc:
        route(method, path, query)
    assert exc.value.code == "MethodNotAllowed" and exc.value.status == 405


def test_virtual_hosted_style() -> None:
    ep = route("GET", "/a%2Fb/c", "", host="bkt.s3.example.com:9000", domain="s3.example.com")
    assert (ep.operation, ep.bucket, ep.key) == ("GetObject", "bkt", "a/b/c")
    ep = route("GET", "/", "list-type=2", host="bkt.s3.example.com", domain="s3.example.com")
    assert (ep.operation, ep.bucket, ep.key) == ("ListObjectsV2", "bkt", "")
    # the bare domain and other hosts fall back to path style
    assert split_path("/bkt/k", "s3.example.com", "s3.example.com") == ("bkt", "k")
    assert split_path("/bkt/k", "127.0.0.1:9000", "s3.example.com") == ("bkt", "k")
    assert split_path("/bkt/k", "[::1]", "s3.example.com") == ("bkt", "k")


def test_virtual_hosted_invalid_utf8_is_invalid_uri() -> None:
    with pytest.raises(S3Error, match="InvalidURI"):
        route("GET", "/%FF", "", host="bkt.s3.example.com", domain="s3.example.com")


def test_endpoint_defaults() -> None:
    ep = Endpoint("ListBuckets")
    assert (ep.bucket, ep.key, ep.query) == ("", "", ())
    assert not ep.has("x")
