"""ListMultipartUploads through boto3: markers, max-uploads, prefix, delimiter, encoding."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.e2e
KEYS = ["a", "a", "a", "b/1", "b/2", "c", "d/e/f", "n\nl"]


@pytest.fixture
def uploads(s3, bucket) -> list[tuple[str, str]]:
    """(key, upload id) of open uploads, created in the order AWS lists them."""
    return [(key, s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"])
            for key in KEYS]


def _listed(page: dict) -> list[tuple[str, str]]:
    return [(u["Key"], u["UploadId"]) for u in page.get("Uploads", [])]


def test_everything_in_key_then_initiation_order(s3, bucket, uploads):
    page = s3.list_multipart_uploads(Bucket=bucket)
    assert _listed(page) == uploads and page["IsTruncated"] is False
    assert page["MaxUploads"] == 1000
    times = [u["Initiated"] for u in page["Uploads"] if u["Key"] == "a"]
    assert times == sorted(times)


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_paginator_walks_every_upload_once(s3, bucket, uploads, size):
    pages = list(s3.get_paginator("list_multipart_uploads").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": size}))
    assert len(pages) == -(-len(uploads) // size)
    assert [u for p in pages for u in _listed(p)] == uploads
    assert all(p["IsTruncated"] for p in pages[:-1]) and not pages[-1]["IsTruncated"]


def test_markers(s3, bucket, uploads):
    first = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=2)
    assert _listed(first) == uploads[:2] and first["IsTruncated"]
    assert (first["NextKeyMarker"], first["NextUploadIdMarker"]) == uploads[1]
    rest = s3.list_multipart_uploads(Bucket=bucket, KeyMarker="a",
                                     UploadIdMarker=uploads[1][1], MaxUploads=2)
    assert _listed(rest) == uploads[2:4]
    assert rest["KeyMarker"] == "a" and rest["UploadIdMarker"] == uploads[1][1]
    after_key = s3.list_multipart_uploads(Bucket=bucket, KeyMarker="a")
    assert _listed(after_key) == uploads[3:]


def test_prefix_and_delimiter(s3, bucket, uploads):
    top = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
    assert [u[0] for u in _listed(top)] == ["a", "a", "a", "c", "n\nl"]
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["b/", "d/"]
    paged = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/", MaxUploads=4)
    assert paged["IsTruncated"] and paged["CommonPrefixes"] == [{"Prefix": "b/"}]
    assert paged["NextKeyMarker"] == "b/"
    rest = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/", KeyMarker="b/")
    assert [u[0] for u in _listed(rest)] == ["c", "n\nl"]
    assert rest["CommonPrefixes"] == [{"Prefix": "d/"}]
    under = s3.list_multipart_uploads(Bucket=bucket, Prefix="b/")
    assert _listed(under) == uploads[3:5] and under["Prefix"] == "b/"
    nested = s3.list_multipart_uploads(Bucket=bucket, Prefix="d/", Delimiter="/")
    assert "Uploads" not in nested and nested["CommonPrefixes"] == [{"Prefix": "d/e/"}]


def test_url_encoding(s3, bucket, uploads):
    """boto3 does not decode this listing: the encoded values are what it shows."""
    page = s3.list_multipart_uploads(Bucket=bucket, EncodingType="url", Prefix="n\n",
                                     KeyMarker="n\n", Delimiter="\n")
    assert page["EncodingType"] == "url"
    assert page["Prefix"] == "n%0A" and page["KeyMarker"] == "n%0A"
    assert page["Delimiter"] == "%0A"
    assert [u["Key"] for u in page["Uploads"]] == ["n%0Al"]
    assert page["NextKeyMarker"] == "n%0Al"
    rolled = s3.list_multipart_uploads(Bucket=bucket, EncodingType="url", Delimiter="\n")
    assert rolled["CommonPrefixes"] == [{"Prefix": "n%0A"}]


def test_max_uploads_bounds(s3, bucket, uploads):
    empty = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=0)
    assert "Uploads" not in empty and empty["IsTruncated"] is False
    with pytest.raises(ClientError) as err:
        s3.list_multipart_uploads(Bucket=bucket, MaxUploads=-1)
    assert err.value.response["Error"]["Code"] == "InvalidArgument"
    with pytest.raises(ClientError) as err:
        s3.list_multipart_uploads(Bucket=bucket, EncodingType="base64")
    assert err.value.response["Error"]["Code"] == "InvalidArgument"
