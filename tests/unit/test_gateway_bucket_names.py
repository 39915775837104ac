"""Bucket names are checked on every request, before any volume is asked (gateway.router)."""

from __future__ import annotations

import pytest

from gateway.errors import S3Error
from gateway.router import check_bucket_name, route


@pytest.mark.parametrize(("method", "path", "bucket"), [
    ("GET", "/.", "."),
    ("GET", "/..", ".."),
    ("HEAD", "/..", ".."),
    ("GET", "/x%2F..", "x/.."),
    ("GET", "/x%2F..%2F..", "x/../.."),
    ("PUT", "/x%2F../key", "x/.."),
    ("DELETE", "/..%2Fbuckets/k", "../buckets"),
    ("GET", "/ab", "ab"),
    ("GET", "/" + "a" * 256, "a" * 256),
    ("GET", "/.hidden", ".hidden"),
    ("GET", "/-dash", "-dash"),
    ("GET", "/sp%20ace", "sp ace"),
    ("GET", "/caf%C3%A9", "café"),
    ("POST", "/a%0Ab?delete", "a\nb"),
    ("PUT", "/-/health", "-"),
])
def test_invalid_names_refused_for_every_operation(method: str, path: str,
                                                    bucket: str) -> None:
    raw_path, _, query = path.partition("?")
    with pytest.raises(S3Error) as err:
        route(method, raw_path, query)
    assert err.value.code == "InvalidBucketName"
    assert err.value.status == 400
    assert err.value.extra == {"BucketName": bucket}


@pytest.mark.parametrize("name", [
    "abc", "my-bucket", "my.bucket.name", "a" * 255,
    # legacy (us-east-1) names: never creatable here, so a lookup answers NoSuchBucket
    "Foo_Bar", "UPPER", "a..b", "a-.b", "192.168.1.1",
])
def test_addressable_names_pass(name: str) -> None:
    check_bucket_name(name)
    assert route("GET", f"/{name}", "").bucket == name


def test_list_buckets_has_no_bucket_to_check() -> None:
    assert route("GET", "/", "").operation == "ListBuckets"


def test_virtual_hosted_bucket_is_checked_too() -> None:
    with pytest.raises(S3Error) as err:
        route("GET", "/key", "", host="a_.s3.example", domain="s3.example")
    assert err.value.code == "InvalidBucketName"
    assert route("GET", "/key", "", host="good.s3.example:9000",
                 domain="s3.example").bucket == "good"
