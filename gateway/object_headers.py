"""Which request headers an object keeps, and the headers a GET/HEAD answers with."""

from __future__ import annotations

from gateway.errors import S3Error
from gateway.xml import http_date
from shardgate.manifest import ObjectManifest

STORED_HEADERS = ("cache-control", "content-disposition", "content-encoding",
                  "content-language", "expires", "x-amz-website-redirect-location",
                  "x-amz-storage-class")
MAX_USER_METADATA = 2048  # bytes of names + values, as S3


def stored_headers(headers: dict[str, str]) -> tuple[str, dict[str, str], dict[str, str]]:
    """(content type, content headers, user metadata) to keep with a new object."""
    content_type = headers.get("content-type") or "binary/octet-stream"
    kept = {}
    for name in STORED_HEADERS:
        if name in headers:
            kept[name] = headers[name]
    encoding = kept.get("content-encoding")
    if encoding is not None:  # aws-chunked is a transfer detail, never stored
        rest = [e.strip() for e in encoding.split(",")
                if e.strip() and e.strip().lower() != "aws-chunked"]
        if rest:
            kept["content-encoding"] = ", ".join(rest)
        else:
            del kept["content-encoding"]
    metadata = {name[len("x-amz-meta-"):]: value for name, value in headers.items()
                if name.startswith("x-amz-meta-")}
    if sum(len(k) + len(v) for k, v in metadata.items()) > MAX_USER_METADATA:
        raise S3Error("InvalidArgument", "Your metadata headers exceed the maximum allowed "
                                         "metadata size (2 KB).")
    return content_type, kept, metadata


def object_headers(manifest: ObjectManifest, with_checksum: bool) -> dict[str, str]:
    headers = {
        "ETag": f'"{manifest.etag}"',
        "Last-Modified": http_date(manifest.last_modified),
        "Content-Type": manifest.content_type,
        "Accept-Ranges": "bytes",
    }
    for name, value in manifest.headers.items():
        if name == "x-amz-storage-class" and value == "STANDARD":
            continue
        headers[name] = value
    for name, value in manifest.metadata.items():
        headers[f"x-amz-meta-{name}"] = value
    if manifest.tags:
        headers["x-amz-tagging-count"] = str(len(manifest.tags))
    if with_checksum:
        for algorithm, value in manifest.checksums.items():
            headers[f"x-amz-checksum-{algorithm.lower()}"] = value
        if manifest.checksums and manifest.checksum_type:
            headers["x-amz-checksum-type"] = manifest.checksum_type
    return headers
