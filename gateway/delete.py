"""DeleteObject and DeleteObjects: tombstone versions, so a volume that was down cannot
bring a deleted object back (docs/durability.md)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator

from starlette.responses import Response, StreamingResponse

from gateway.context import RequestContext
from gateway.errors import S3Error
from gateway.objects.bucket_records import BucketRecord
from gateway.objects.versions import check_version_id
from gateway.put import content_md5, write_conditions
from gateway.router import MAX_KEY_BYTES
from gateway.versioning import marker_headers, version_header
from gateway.xml import child_text, children, fragment, parse, stream_close, stream_open
from shardgate.manifest import ObjectManifest

XML = "application/xml"
MAX_DELETE_KEYS = 1000
MAX_DELETE_BODY = 2 * 1024 * 1024


async def delete_object(ctx: RequestContext) -> Response:
    """Without a version id: a delete marker (204 with its id while the bucket is
    versioned); with one: that version removed for good (204 even if it was not there,
    as S3 answers)."""
    bucket = await ctx.bucket()
    version_id = ctx.endpoint.param("versionId")
    if version_id is None:
        marker = await ctx.objects.delete(bucket, ctx.endpoint.key, ctx.user_id,
                                          write_conditions(ctx.headers).if_match)
        return Response(status_code=204, headers=marker_headers(bucket, marker))
    check_version_id(version_id)
    if not _may_delete_versions(ctx, bucket):
        raise S3Error("AccessDenied")
    removed = await ctx.objects.delete_version(bucket, ctx.endpoint.key, version_id)
    headers = version_header(bucket, version_id)
    if removed is not None and removed.delete_marker:
        headers["x-amz-delete-marker"] = "true"
    return Response(status_code=204, headers=headers)


async def delete_objects(ctx: RequestContext) -> Response:
    """POST ?delete. Arrives with Content-MD5 or a flexible checksum; both are checked
    by the body reader, the MD5 here.

    Up to 1,000 keys take seconds, longer than some clients wait for a first byte (s3fs:
    15 s), so once the request is known to be valid the answer starts at once and each
    <Deleted> or <Error> is sent as that key finishes, as S3 keeps long answers alive.
    """
    bucket = await ctx.bucket()
    raw = await ctx.read_small_body(MAX_DELETE_BODY)
    _check_md5(ctx, raw)
    root = parse(raw, MAX_DELETE_BODY, expected_root="Delete")
    quiet = (child_text(root, "Quiet") or "").strip().lower() == "true"
    objects = children(root, "Object")
    if len(objects) > MAX_DELETE_KEYS:
        raise S3Error("MalformedXML", "The request may contain at most 1000 keys.")
    keys: list[tuple[str, str | None, str | None]] = []
    for obj in objects:
        key = child_text(obj, "Key")
        if key is None:
            raise S3Error("MalformedXML")
        etag = child_text(obj, "ETag")
        keys.append((key, child_text(obj, "VersionId"),
                     None if etag is None else etag.strip().strip('"')))
    owner = _may_delete_versions(ctx, bucket)
    invalid = [(k, v, _invalid_entry(k, v, owner)) for k, v, _ in keys
               if _invalid_entry(k, v, owner)]
    valid = [(k, v, e) for k, v, e in keys if _invalid_entry(k, v, owner) is None]
    results = ctx.objects.delete_many(bucket, valid, ctx.user_id)
    # The first result means the batch is valid and the clock synced: the answer can start.
    first = await anext(results, None) if valid else None

    async def answer() -> AsyncIterator[bytes]:
        yield stream_open("DeleteResult")
        for key, version_id, error in invalid:
            yield _error(key, version_id, error)
        finished = first
        try:
            while finished is not None:
                key, version_id, outcome = finished
                if isinstance(outcome, S3Error):
                    yield _error(key, version_id, outcome)
                elif not quiet:
                    yield fragment("Deleted", _deleted(key, version_id, outcome))
                finished = await anext(results, None)
        finally:
            await results.aclose()  # a client that left stops the rest
        yield stream_close("DeleteResult")

    return StreamingResponse(answer(), media_type=XML)


def _may_delete_versions(ctx: RequestContext, bucket: BucketRecord) -> bool:
    """Removing a version for good is the bucket owner's alone, as in S3: a WRITE grant
    lets others add delete markers, never erase history."""
    return ctx.requester is not None and ctx.requester == bucket.owner


def _invalid_entry(key: str, version_id: str | None, may_delete_versions: bool
                   ) -> S3Error | None:
    if not key or len(key.encode()) > MAX_KEY_BYTES:
        return S3Error("KeyTooLongError" if key else "InvalidArgument")
    if version_id is not None:
        try:
            check_version_id(version_id)
        except S3Error as exc:
            return exc
        if not may_delete_versions:
            return S3Error("AccessDenied")
    return None


def _error(key: str, version_id: str | None, error: S3Error) -> bytes:
    return fragment("Error", [("Key", key), *([("VersionId", version_id)] if version_id
                                               else []),
                              ("Code", error.code), ("Message", error.message)])


def _deleted(key: str, version_id: str | None,
             outcome: ObjectManifest | None) -> list[tuple[str, str]]:
    """<Deleted>: the version removed, or the delete marker a plain delete wrote."""
    fields = [("Key", key)]
    if version_id is not None:
        fields.append(("VersionId", version_id))
        if outcome is not None and outcome.delete_marker:
            fields += [("DeleteMarker", "true"), ("DeleteMarkerVersionId", version_id)]
    elif outcome is not None and outcome.delete_marker:
        fields += [("DeleteMarker", "true"),
                   ("DeleteMarkerVersionId", outcome.public_version_id)]
    return fields


def _check_md5(ctx: RequestContext, raw: bytes) -> None:
    expected = content_md5(ctx.headers)
    if expected is not None and expected != hashlib.md5(raw).digest():
        raise S3Error("BadDigest", extra={"CalculatedDigest":
                                          base64.b64encode(hashlib.md5(raw).digest()).decode()})
