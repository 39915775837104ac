"""CopyObject and UploadPartCopy: parse the copy source and its conditions, then stream.

The object layer streams the source's verified bytes into a new write, so a copy holds
at most a few segments in memory whatever its size. A copy that takes long answers 200
at once and keeps the connection alive (gateway/keepalive.py).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from urllib.parse import unquote

from starlette.responses import Response

from gateway import access
from gateway.acl import header_acl
from gateway.checksums import ALGORITHMS
from gateway.conditions import NOT_MODIFIED, evaluate
from gateway.context import RequestContext
from gateway.errors import S3Error
from gateway.keepalive import answer_when_done
from gateway.multipart import MAX_PART_SIZE
from gateway.multipart import _part_number as part_number
from gateway.multipart import _upload as upload_of
from gateway.object_headers import stored_headers
from gateway.objects.layer import ObjectAttributes
from gateway.put import write_conditions
from gateway.router import MAX_KEY_BYTES, check_bucket_name
from gateway.tagging import header_tags
from gateway.versioning import object_version_header, write_version_header
from gateway.xml import document, iso8601
from shardgate.manifest import ObjectManifest

XML = "application/xml"
MAX_COPY_SIZE = 5 * 1024**3
_RANGE = re.compile(r"bytes=(\d+)-(\d+)")
_SELF_COPY = ("This copy request is illegal because it is trying to copy an object to "
              "itself without changing the object's metadata, storage class, website "
              "redirect location or encryption attributes.")


@dataclass(frozen=True)
class CopySource:
    bucket: str
    key: str
    version_id: str | None


def parse_copy_source(value: str) -> CopySource:
    """`x-amz-copy-source`: `[/]bucket/key[?versionId=id]`, the key URL-encoded."""
    raw, _, query = value.partition("?")
    version_id = None
    if query:
        name, _, version_id = query.partition("=")
        if name != "versionId" or not version_id:
            raise S3Error("InvalidArgument", "Unsupported copy source parameter.")
    bucket, _, key = raw.removeprefix("/").partition("/")
    try:
        bucket, key = unquote(bucket, errors="strict"), unquote(key, errors="strict")
    except UnicodeDecodeError as exc:
        raise S3Error("InvalidArgument", "Invalid copy source encoding.") from exc
    if not bucket or not key:
        raise S3Error("InvalidArgument", "Copy Source must mention the source bucket and "
                                         "key: sourcebucket/sourcekey.")
    check_bucket_name(bucket)
    if len(key.encode()) > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError")
    return CopySource(bucket, key, version_id)


def source_conditions(headers: dict[str, str]) -> dict[str, str]:
    """The x-amz-copy-source-if-* headers as the plain conditional headers they mirror."""
    prefix = "x-amz-copy-source-"
    return {name[len(prefix):]: value for name, value in headers.items()
            if name.startswith(prefix + "if-")}


async def _source(ctx: RequestContext) -> tuple[CopySource, ObjectManifest, dict[str, str]]:
    """The source version (NoSuchBucket, NoSuchKey, NoSuchVersion), conditions checked:
    on a copy every failed condition is 412, none is 304."""
    source = parse_copy_source(ctx.headers["x-amz-copy-source"])
    bucket = await ctx.objects.bucket(source.bucket)
    # READ on the source; a missing one is AccessDenied to whoever may not list its bucket
    manifest = await ctx.readable_version(bucket, source.key, source.version_id,
                                          access.READ)
    if manifest.deleted:
        raise S3Error("InvalidRequest", "The source of a copy request may not specifically "
                                        "refer to a delete marker by version id.")
    if evaluate(source_conditions(ctx.headers), manifest.etag,
                manifest.last_modified) == NOT_MODIFIED:
        raise S3Error("PreconditionFailed")
    header = {f"x-amz-copy-source-{name[6:]}": value
              for name, value in object_version_header(bucket, manifest).items()}
    return source, manifest, header


def _directive(ctx: RequestContext, header: str) -> str:
    directive = ctx.headers.get(header, "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise S3Error("InvalidArgument", f"Unknown {header} value.")
    return directive


def _destination_attributes(ctx: RequestContext, source: ObjectManifest) -> ObjectAttributes:
    """Metadata and tags from the source (COPY) or from the request (REPLACE)."""
    tags = (header_tags(ctx.headers)
            if _directive(ctx, "x-amz-tagging-directive") == "REPLACE" else dict(source.tags))
    if _directive(ctx, "x-amz-metadata-directive") == "REPLACE":
        content_type, kept, metadata = stored_headers(ctx.headers)
        return ObjectAttributes(ctx.user_id, content_type, kept, metadata, tags)
    kept = dict(source.headers)
    for name in ("x-amz-storage-class", "x-amz-website-redirect-location"):
        if name in ctx.headers:
            kept[name] = ctx.headers[name]
    return ObjectAttributes(ctx.user_id, source.content_type, kept, dict(source.metadata),
                            tags)


def _checksum_algorithm(ctx: RequestContext, source: ObjectManifest) -> str | None:
    """The algorithm the client asks for, else the source's, else the default."""
    asked = ctx.headers.get("x-amz-checksum-algorithm", "").upper()
    if asked:
        if asked not in ALGORITHMS:
            raise S3Error("InvalidRequest", f"Checksum algorithm {asked} is not supported.")
        return asked
    return next(iter(source.checksums), None)


def _changes_something(ctx: RequestContext) -> bool:
    headers = ctx.headers
    return (headers.get("x-amz-metadata-directive", "COPY").upper() == "REPLACE"
            or any(name in headers for name in ("x-amz-storage-class",
                                                "x-amz-website-redirect-location",
                                                "x-amz-checksum-algorithm"))
            or headers.get("x-amz-tagging-directive", "COPY").upper() == "REPLACE")


async def copy_object(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket()
    key = ctx.endpoint.key
    conditions = write_conditions(ctx.headers)
    source, manifest, source_header = await _source(ctx)
    if (source.bucket, source.key) == (bucket.name, key) and not _changes_something(ctx):
        # Copying an older version onto its own key restores it; the current one needs
        # a change of something.
        current = manifest if source.version_id is None else await ctx.objects.current(
            bucket, key)
        if current is not None and current.version_id == manifest.version_id:
            raise S3Error("InvalidRequest", _SELF_COPY)
    if manifest.size > MAX_COPY_SIZE:
        raise S3Error("InvalidRequest", "The specified copy source is larger than the "
                                        f"maximum allowable size for a copy source: "
                                        f"{MAX_COPY_SIZE}")
    attrs = replace(_destination_attributes(ctx, manifest),
                    acl=header_acl(ctx, ctx.user_id, bucket))
    algorithm = _checksum_algorithm(ctx, manifest)

    async def work() -> Response:
        result = await ctx.objects.copy(manifest, bucket, key, attrs, conditions, algorithm,
                                        MAX_COPY_SIZE)
        stored = result.manifest
        checksums = [(f"Checksum{name}", value) for name, value in stored.checksums.items()]
        body = document("CopyObjectResult", [
            ("LastModified", iso8601(stored.last_modified)), ("ETag", f'"{stored.etag}"'),
            *checksums, *([("ChecksumType", stored.checksum_type)] if checksums else [])])
        return Response(body, media_type=XML, headers={
            **source_header, **write_version_header(bucket, stored)})

    return await answer_when_done(work(), ctx.request_id, ctx.request.url.path,
                                  ctx.config.gateway.slow_answer_seconds)


def copy_range(value: str | None, size: int) -> tuple[int, int]:
    """`x-amz-copy-source-range` (bytes=first-last, inside the source) or the whole."""
    if value is None:
        return 0, size - 1
    match = _RANGE.fullmatch(value.strip())
    if match is None:
        raise S3Error("InvalidArgument", "The x-amz-copy-source-range value must be of the "
                                         "form bytes=first-last.")
    first, last = int(match.group(1)), int(match.group(2))
    if first > last:
        raise S3Error("InvalidArgument", "The x-amz-copy-source-range value must be of the "
                                         "form bytes=first-last where first <= last.")
    if last >= size:
        raise S3Error("InvalidRange", "Range specified is not valid for source object of "
                                      f"size: {size}")
    return first, last


async def upload_part_copy(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket()
    number = part_number(ctx)
    upload = await upload_of(ctx, bucket)
    _, manifest, source_header = await _source(ctx)
    start, end = copy_range(ctx.headers.get("x-amz-copy-source-range"), manifest.size)
    if end - start + 1 > MAX_PART_SIZE:
        raise S3Error("InvalidRequest", "The specified copy range is larger than the "
                                        f"maximum part size: {MAX_PART_SIZE}")

    async def work() -> Response:
        part, verified = await ctx.objects.copy_part(manifest, start, end, bucket, upload,
                                                     number, MAX_PART_SIZE)
        checksums = ([(f"Checksum{verified.algorithm}", verified.checksum)]
                     if upload.meta.get("checksum_algorithm") else [])
        body = document("CopyPartResult", [
            ("LastModified", iso8601(time.time())), ("ETag", f'"{part.etag}"'),
            *checksums])
        return Response(body, media_type=XML, headers=source_header)

    return await answer_when_done(work(), ctx.request_id, ctx.request.url.path,
                                  ctx.config.gateway.slow_answer_seconds)
