"""Refuse headers that ask for a feature shardgate lacks (501), so none is silently ignored.

A client that asks for encryption, object lock or ACL grants and gets 200 believes
its data is protected or labelled when it is not. Headers that ask for what shardgate does
anyway stay accepted: `x-amz-acl: private` (every bucket is private to its owner),
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
# Canned ACLs that grant nothing beyond the owner: what every object and bucket has.
OWNER_ONLY_ACLS = ("private", "bucket-owner-full-control")
# Object ownership that keeps ACLs disabled (AWS's default for new buckets).
ACLS_DISABLED_OWNERSHIP = "BucketOwnerEnforced"

# Operations that create an object (or an upload that becomes one) with these settings.
_OBJECT_WRITES = frozenset({"PutObject", "CreateMultipartUpload", "CopyObject"})
# SSE-C keys are sent on every request that touches the object's bytes.
_SSE_C_OPERATIONS = _OBJECT_WRITES | {"UploadPart", "UploadPartCopy", "GetObject",
                                      "HeadObject"}
_ACL_OPERATIONS = _OBJECT_WRITES | {"CreateBucket"}


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
    if operation in _ACL_OPERATIONS:
        _refuse_acl(headers)
    if operation == "CreateBucket":
        _refuse_bucket_features(headers)


def _refuse_acl(headers: Mapping[str, str]) -> None:
    acl = headers.get("x-amz-acl", "").strip()
    if acl and acl.lower() not in OWNER_ONLY_ACLS:
        raise _not_implemented("x-amz-acl", f"The canned ACL {acl!r}")
    for name in sorted(headers):
        if name.startswith("x-amz-grant-") and _sent(headers, name):
            raise _not_implemented(name, "ACL grants")


def _refuse_bucket_features(headers: Mapping[str, str]) -> None:
    if headers.get("x-amz-bucket-object-lock-enabled", "").strip().lower() == "true":
        raise _not_implemented("x-amz-bucket-object-lock-enabled", "Object lock")
    ownership = headers.get("x-amz-object-ownership", "").strip()
    if ownership and ownership != ACLS_DISABLED_OWNERSHIP:
        raise _not_implemented("x-amz-object-ownership", f"Object ownership {ownership!r}")
