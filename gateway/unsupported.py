"""Refuse headers that ask for a feature shardgate lacks (501), so none is silently ignored.

A client that asks for encryption or object lock and gets 200 believes its data is
protected when it is not. Headers that ask for what shardgate does anyway stay accepted:
`x-amz-bucket-object-lock-enabled: false`, and `x-amz-bypass-governance-retention` on
deletes (nothing is retained, so there is nothing to bypass; the Ceph s3-tests cleanup
sends it). Called once per request, after routing and authentication.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.errors import S3Error

SSE_HEADERS = (
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-server-side-encryption-context",
    "x-amz-server-side-encryption-bucket-key-enabled",
)
SSE_C_HEADERS = (
    "x-amz-server-side-encryption-customer-algorithm",
    "x-amz-server-side-encryption-customer-key",
    "x-amz-server-side-encryption-customer-key-md5",
    "x-amz-copy-source-server-side-encryption-customer-algorithm",
    "x-amz-copy-source-server-side-encryption-customer-key",
    "x-amz-copy-source-server-side-encryption-customer-key-md5",
)
OBJECT_LOCK_HEADERS = (
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold",
)

# Operations that create an object (or an upload that becomes one) with these settings.
_OBJECT_WRITES = frozenset({"PutObject", "CreateMultipartUpload", "CopyObject"})
# SSE-C keys are sent on every request that touches the object's bytes.
_SSE_C_OPERATIONS = _OBJECT_WRITES | {"UploadPart", "UploadPartCopy", "GetObject",
                                      "HeadObject"}


def _not_implemented(header: str, feature: str) -> S3Error:
    return S3Error("NotImplemented", f"{feature} is not implemented.",
                   extra={"Header": header})


def _sent(headers: Mapping[str, str], name: str) -> bool:
    """An empty value asks for nothing (some clients send configured-but-empty headers)."""
    return bool(headers.get(name, "").strip())


def refuse_unsupported(operation: str, headers: Mapping[str, str]) -> None:
    """Raise NotImplemented, naming the header, if `headers` ask `operation` for a missing
    feature. `headers` has lowercase names (canonical.headers_from_asgi)."""
    if operation in _OBJECT_WRITES:
        for name in SSE_HEADERS:
            if _sent(headers, name):
                raise _not_implemented(name, "Server-side encryption")
        for name in OBJECT_LOCK_HEADERS:
            if _sent(headers, name):
                raise _not_implemented(name, "Object lock")
    if operation in _SSE_C_OPERATIONS:
        for name in SSE_C_HEADERS:
            if _sent(headers, name):
                raise _not_implemented(name, "Server-side encryption with customer keys")
    if operation == "CreateBucket":
        _refuse_bucket_features(headers)


def _refuse_bucket_features(headers: Mapping[str, str]) -> None:
    if headers.get("x-amz-bucket-object-lock-enabled", "").strip().lower() == "true":
        raise _not_implemented("x-amz-bucket-object-lock-enabled", "Object lock")
