"""gateway.bucket: ListBuckets arguments and pages."""

from __future__ import annotations

import pytest

from gateway.bucket import _max_buckets, _token_name, bucket_page
from gateway.errors import S3Error


@pytest.mark.parametrize("raw", ["0", "10001", "x", "", "-3"])
def test_max_buckets_bounds(raw: str) -> None:
    with pytest.raises(S3Error) as err:
        _max_buckets(raw)
    assert err.value.code == "InvalidArgument"


def test_max_buckets_default_and_token() -> None:
    assert _max_buckets(None) == 10_000 and _max_buckets("1") == 1
    with pytest.raises(S3Error):
        _token_name("not base64!")
    with pytest.raises(S3Error):
        _token_name("%%%")
    assert _token_name("YQ==") == "a"


def test_bucket_pages() -> None:
    names = ["c", "a", "ab", "b"]
    assert bucket_page(names, "", "", 2) == (["a", "ab"], "ab")
    assert bucket_page(names, "", "ab", 2) == (["b", "c"], None)
    assert bucket_page(names, "a", "", 2) == (["a", "ab"], None)
    assert bucket_page(names, "z", "", 2) == ([], None)
