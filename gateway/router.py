"""Turns an HTTP request into a typed S3 endpoint; testable without a server.

Path-style addressing (`/bucket/key`) and virtual-hosted style (`bucket.<domain>/key`
when a domain is configured). Sub-resources we do not serve yet map to NotImplemented.
Every bucket name is checked here, so no name that could not address a bucket (`..`,
`x/..` from `x%2F..`) ever reaches a volume URL.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from gateway.errors import S3Error

MAX_KEY_BYTES = 1024

# Names that may address a bucket: S3's legacy (us-east-1) rules, 3 to 255 letters of
# either case, digits, '.', '-' and '_', starting with a letter or digit. AWS answers
# NoSuchBucket for such a name that does not exist and InvalidBucketName for anything
# else; creation applies the stricter current rules (bucket_records.validate_bucket_name).
_ADDRESSABLE_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{2,254}")

# Query parameters that name an operation we do not implement yet.
_UNSUPPORTED_SUBRESOURCES = (
    "policy", "lifecycle", "website", "replication", "logging",
    "notification", "encryption", "object-lock", "retention", "legal-hold", "torrent",
    "requestPayment", "accelerate", "analytics", "inventory", "metrics", "ownershipControls",
    "publicAccessBlock", "intelligent-tiering", "restore", "select",
    "policyStatus",
)


@dataclass(frozen=True)
class Endpoint:
    operation: str
    bucket: str = ""
    key: str = ""
    query: tuple[tuple[str, str], ...] = ()

    def param(self, name: str, default: str | None = None) -> str | None:
        for k, v in self.query:
            if k == name:
                return v
        return default

    def has(self, name: str) -> bool:
        return any(k == name for k, _ in self.query)


def split_path(raw_path: str, host: str = "", domain: str = "") -> tuple[str, str]:
    """(bucket, key) from the still-encoded path. Keys keep `//` and a literal `+`."""
    path = raw_path.split("?", 1)[0]
    trimmed = path[1:] if path.startswith("/") else path
    try:
        if domain and host:
            hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            suffix = "." + domain
            if hostname.endswith(suffix) and len(hostname) > len(suffix):
                return hostname[: -len(suffix)], unquote(trimmed, errors="strict")
        bucket, _, key = trimmed.partition("/")
        return unquote(bucket, errors="strict"), unquote(key, errors="strict")
    except UnicodeDecodeError as exc:
        raise S3Error("InvalidURI") from exc


def check_bucket_name(bucket: str) -> None:
    """InvalidBucketName unless `bucket` could name a bucket (see _ADDRESSABLE_BUCKET)."""
    if not _ADDRESSABLE_BUCKET.fullmatch(bucket):
        raise S3Error("InvalidBucketName", extra={"BucketName": bucket})


def route(method: str, raw_path: str, raw_query: str, host: str = "", domain: str = "",
          headers: dict[str, str] | None = None) -> Endpoint:
    headers = headers or {}
    bucket, key = split_path(raw_path, host, domain)
    if bucket:
        check_bucket_name(bucket)
    query = tuple(parse_qsl(raw_query, keep_blank_values=True))
    names = {k for k, _ in query}
    if len(key.encode()) > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError", extra={"Size": str(len(key.encode())),
                                                  "MaxSizeAllowed": str(MAX_KEY_BYTES)})
    if method == "OPTIONS" and bucket:
        # A browser's CORS preflight: never signed, answered from the bucket's rules.
        return Endpoint("PreflightCors", bucket, key, query)
    for name in _UNSUPPORTED_SUBRESOURCES:
        if name in names:
            raise S3Error("NotImplemented", f"The '{name}' sub-resource is not implemented.")

    def ep(op: str) -> Endpoint:
        return Endpoint(op, bucket, key, query)

    if not bucket:
        if method in ("GET", "HEAD"):
            return ep("ListBuckets")
        raise S3Error("MethodNotAllowed")
    if not key:
        return _bucket_operation(method, names, query, ep)
    by_method = _by_method(method, names, on_bucket=False)
    if by_method is not None:
        return ep(by_method)
    if method == "PUT":
        if "x-amz-copy-source" in headers:
            if "uploadId" in names or "partNumber" in names:
                return ep("UploadPartCopy")
            return ep("CopyObject")
        if "uploadId" in names or "partNumber" in names:
            return ep("UploadPart")
        return ep("PutObject")
    if method == "GET":
        if "attributes" in names:
            return ep("GetObjectAttributes")
        return ep("ListParts" if "uploadId" in names else "GetObject")
    if method == "HEAD":
        return ep("HeadObject")
    if method == "POST":
        if "uploads" in names:
            return ep("CreateMultipartUpload")
        if "uploadId" in names:
            return ep("CompleteMultipartUpload")
        raise S3Error("MethodNotAllowed")
    if method == "DELETE":
        return ep("AbortMultipartUpload" if "uploadId" in names else "DeleteObject")
    raise S3Error("MethodNotAllowed")


# Sub-resources whose operation follows from the method alone:
# (sub-resource, on a bucket) -> method -> operation.
_BY_METHOD = {
    ("acl", True): {"GET": "GetBucketAcl", "PUT": "PutBucketAcl"},
    ("acl", False): {"GET": "GetObjectAcl", "PUT": "PutObjectAcl"},
    ("cors", True): {"GET": "GetBucketCors", "PUT": "PutBucketCors",
                     "DELETE": "DeleteBucketCors"},
    ("tagging", True): {"GET": "GetBucketTagging", "PUT": "PutBucketTagging",
                        "DELETE": "DeleteBucketTagging"},
    ("tagging", False): {"GET": "GetObjectTagging", "PUT": "PutObjectTagging",
                         "DELETE": "DeleteObjectTagging"},
}


def _by_method(method: str, names: set[str], on_bucket: bool) -> str | None:
    """The operation of a sub-resource in _BY_METHOD (MethodNotAllowed for a method it
    lacks), or None when the request names none of them."""
    for (name, bucket_level), operations in _BY_METHOD.items():
        if bucket_level == on_bucket and name in names:
            if method not in operations:
                raise S3Error("MethodNotAllowed")
            return operations[method]
    return None


def _bucket_operation(method: str, names: set[str], query: tuple[tuple[str, str], ...],
                      ep: Callable[[str], Endpoint]) -> Endpoint:
    by_method = _by_method(method, names, on_bucket=True)
    if by_method is not None:
        return ep(by_method)
    if method == "PUT":
        if "versioning" in names:
            return ep("PutBucketVersioning")
        return ep("CreateBucket")
    if method == "HEAD":
        return ep("HeadBucket")
    if method == "DELETE":
        return ep("DeleteBucket")
    if method == "GET":
        if "location" in names:
            return ep("GetBucketLocation")
        if "versioning" in names:
            return ep("GetBucketVersioning")
        if "uploads" in names:
            return ep("ListMultipartUploads")
        if "versions" in names:
            return ep("ListObjectVersions")
        if dict(query).get("list-type") == "2":
            return ep("ListObjectsV2")
        return ep("ListObjects")
    if method == "POST" and "delete" in names:
        return ep("DeleteObjects")
    raise S3Error("MethodNotAllowed")
