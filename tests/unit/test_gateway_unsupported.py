"""Headers asking for missing features get 501 NotImplemented; harmless ones pass."""

from __future__ import annotations

import pytest

from gateway.errors import S3Error
from gateway.unsupported import refuse_unsupported

REFUSED = [
    ("PutObject", "x-amz-server-side-encryption", "AES256"),
    ("PutObject", "x-amz-server-side-encryption", "aws:kms"),
    ("CreateMultipartUpload", "x-amz-server-side-encryption", "AES256"),
    ("PutObject", "x-amz-server-side-encryption-aws-kms-key-id", "key-1"),
    ("PutObject", "x-amz-server-side-encryption-context", "e30="),
    ("PutObject", "x-amz-server-side-encryption-bucket-key-enabled", "true"),
    ("PutObject", "x-amz-server-side-encryption-customer-algorithm", "AES256"),
    ("PutObject", "x-amz-server-side-encryption-customer-key", "a2V5"),
    ("PutObject", "x-amz-server-side-encryption-customer-key-md5", "bWQ1"),
    ("CreateMultipartUpload", "x-amz-server-side-encryption-customer-algorithm", "AES256"),
    ("UploadPart", "x-amz-server-side-encryption-customer-algorithm", "AES256"),
    ("GetObject", "x-amz-server-side-encryption-customer-algorithm", "AES256"),
    ("HeadObject", "x-amz-server-side-encryption-customer-key", "a2V5"),
    ("PutObject", "x-amz-object-lock-mode", "GOVERNANCE"),
    ("PutObject", "x-amz-object-lock-retain-until-date", "2030-01-01T00:00:00Z"),
    ("PutObject", "x-amz-object-lock-legal-hold", "ON"),
    ("CreateMultipartUpload", "x-amz-object-lock-legal-hold", "OFF"),
    ("CreateBucket", "x-amz-bucket-object-lock-enabled", "true"),
    ("CreateBucket", "x-amz-bucket-object-lock-enabled", "True"),
]

ACCEPTED = [
    ("PutObject", "x-amz-acl", "private"),
    ("PutObject", "x-amz-acl", "bucket-owner-full-control"),
    ("CreateBucket", "x-amz-acl", "private"),
    # ACLs are a feature now (gateway/acl.py checks them)
    ("PutObject", "x-amz-acl", "public-read"),
    ("CreateBucket", "x-amz-grant-write", "id=bob-id"),
    ("CreateBucket", "x-amz-bucket-object-lock-enabled", "false"),
    ("CreateBucket", "x-amz-object-ownership", "BucketOwnerEnforced"),
    ("DeleteObject", "x-amz-bypass-governance-retention", "true"),
    ("DeleteObjects", "x-amz-bypass-governance-retention", "true"),
    ("PutObject", "x-amz-server-side-encryption", ""),  # empty asks for nothing
    ("PutObject", "x-amz-tagging", ""),
    ("PutObject", "x-amz-tagging", "k=v"),
    ("CopyObject", "x-amz-tagging", "k=v"),
    ("CreateMultipartUpload", "x-amz-tagging", "k=v"),
    ("PutObject", "x-amz-meta-color", "blue"),
    ("PutObject", "x-amz-storage-class", "STANDARD"),
    # a header only matters where it means something: GET ignores SSE-S3 headers
    ("GetObject", "x-amz-server-side-encryption", "AES256"),
    ("UploadPart", "x-amz-acl", "public-read"),
    ("ListObjectsV2", "x-amz-server-side-encryption-customer-algorithm", "AES256"),
]


@pytest.mark.parametrize(("operation", "header", "value"), REFUSED)
def test_refused_with_501_naming_the_header(operation: str, header: str, value: str) -> None:
    with pytest.raises(S3Error) as err:
        refuse_unsupported(operation, {"host": "h", header: value})
    assert err.value.code == "NotImplemented"
    assert err.value.status == 501
    assert err.value.extra == {"Header": header}
    assert "not implemented" in err.value.message


@pytest.mark.parametrize(("operation", "header", "value"), ACCEPTED)
def test_accepted(operation: str, header: str, value: str) -> None:
    refuse_unsupported(operation, {"host": "h", header: value})


def test_plain_requests_pass() -> None:
    for operation in ("PutObject", "CreateMultipartUpload", "CreateBucket", "GetObject",
                      "HeadObject", "UploadPart", "DeleteObjects"):
        refuse_unsupported(operation, {"host": "h", "x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
