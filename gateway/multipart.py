"""Multipart uploads, the S3 side: parse and render CreateMultipartUpload, UploadPart,
Complete, Abort, ListParts and ListMultipartUploads (gateway/objects/uploads.py stores)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.responses import Response

from gateway.acl import header_acl
from gateway.checksums import ALGORITHMS, CRC_ALGORITHMS, complete_checksum
from gateway.context import RequestContext
from gateway.errors import S3Error
from gateway.keepalive import answer_when_done
from gateway.listing import url_encoder
from gateway.object_headers import stored_headers
from gateway.objects.bucket_records import BucketRecord
from gateway.objects.layer import ObjectAttributes
from gateway.objects.uploads import CompleteChecks, RequestedPart, Upload
from gateway.put import echo_headers, expectations, write_conditions
from gateway.tagging import header_tags
from gateway.versioning import write_version_header
from gateway.xml import child_text, children, document, iso8601, parse
from shardgate.manifest import ObjectManifest
from shardgate.versionid import version_time_ms

XML = "application/xml"
MAX_PART_SIZE = 5 * 1024**3
MAX_PARTS = 10_000
MAX_COMPLETE_BODY = 4 * 1024 * 1024


async def _upload(ctx: RequestContext, bucket: BucketRecord) -> Upload:
    """The upload named by ?uploadId for this key (NoSuchUpload if absent)."""
    return await ctx.objects.upload(bucket, ctx.endpoint.key,
                                    ctx.endpoint.param("uploadId") or "", ctx.user_id)


async def create_multipart_upload(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket()
    key = ctx.endpoint.key
    content_type, kept, metadata = stored_headers(ctx.headers)
    algorithm = ctx.headers.get("x-amz-checksum-algorithm", "").upper() or None
    checksum_type = ctx.headers.get("x-amz-checksum-type", "").upper() or None
    if algorithm and algorithm not in ALGORITHMS:
        raise S3Error("InvalidRequest", f"Checksum algorithm {algorithm} is not supported.")
    if checksum_type and checksum_type not in ("COMPOSITE", "FULL_OBJECT"):
        raise S3Error("InvalidRequest", "x-amz-checksum-type must be COMPOSITE or FULL_OBJECT.")
    if algorithm and not checksum_type:
        checksum_type = "FULL_OBJECT" if algorithm == "CRC64NVME" else "COMPOSITE"
    if checksum_type == "FULL_OBJECT" and algorithm not in CRC_ALGORITHMS:
        raise S3Error("InvalidRequest", "FULL_OBJECT checksums need a CRC algorithm.")
    if checksum_type == "COMPOSITE" and algorithm == "CRC64NVME":
        raise S3Error("InvalidRequest", "CRC64NVME supports only FULL_OBJECT checksums.")
    upload_id = await ctx.objects.create_upload(
        bucket, key, ObjectAttributes(ctx.user_id, content_type, kept, metadata,
                                      header_tags(ctx.headers),
                                      header_acl(ctx, ctx.user_id, bucket)), algorithm,
        checksum_type)
    headers = {}
    if algorithm:
        headers["x-amz-checksum-algorithm"] = algorithm
        headers["x-amz-checksum-type"] = checksum_type or ""
    body = document("InitiateMultipartUploadResult",
                    [("Bucket", bucket.name), ("Key", key), ("UploadId", upload_id)])
    return Response(body, media_type=XML, headers=headers)


def _part_number(ctx: RequestContext) -> int:
    raw = ctx.endpoint.param("partNumber", "")
    try:
        number = int(raw or "")
    except ValueError as exc:
        raise S3Error("InvalidArgument", "Part number must be an integer between 1 and "
                                         "10000, inclusive.") from exc
    if not 1 <= number <= MAX_PARTS:
        raise S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000, "
                                         "inclusive.")
    return number


async def upload_part(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket()
    number = _part_number(ctx)
    upload = await _upload(ctx, bucket)
    part, verified = await ctx.objects.upload_part(
        bucket, upload, number, ctx.body(), expectations(ctx.headers, MAX_PART_SIZE))
    return Response(status_code=200, headers={"ETag": f'"{part.etag}"',
                                              **echo_headers(verified)})


def _requested_parts(body: bytes) -> list[RequestedPart]:
    """Each <Part> of a Complete body (number, ETag, checksums), checked."""
    root = parse(body, expected_root="CompleteMultipartUpload")
    requested = []
    for node in children(root, "Part"):
        try:
            number = int(child_text(node, "PartNumber") or "")
        except ValueError as exc:
            raise S3Error("MalformedXML") from exc
        etag = (child_text(node, "ETag") or "").strip().strip('"')
        sums = {alg: child_text(node, f"Checksum{alg}") for alg in ALGORITHMS}
        requested.append(RequestedPart(number, etag, {k: v for k, v in sums.items() if v}))
    if not requested:
        raise S3Error("MalformedXML", "You must specify at least one part.")
    if len(requested) > MAX_PARTS:
        raise S3Error("TooManyParts")
    numbers = [p.number for p in requested]
    if numbers != sorted(numbers):
        raise S3Error("InvalidPartOrder")
    # A part number listed twice (a client that re-sent a part): the last entry counts.
    return list({p.number: p for p in requested}.values())


def _complete_result(bucket: str, key: str, manifest: ObjectManifest,
                     headers: dict[str, str]) -> Response:
    fields: list[tuple[str, object]] = [
        ("Location", f"/{bucket}/{key}"), ("Bucket", bucket), ("Key", key),
        ("ETag", f'"{manifest.etag}"')]
    for alg, value in manifest.checksums.items():
        fields.append((f"Checksum{alg}", value))
    if manifest.checksum_type:
        fields.append(("ChecksumType", manifest.checksum_type))
    return Response(document("CompleteMultipartUploadResult", fields), media_type=XML,
                    headers=headers)


async def _complete_body(ctx: RequestContext) -> bytes:
    """The Complete XML, bounded. Its x-amz-checksum-* headers describe the object being
    made, so unlike other XML bodies this one is not checked against them."""
    out = bytearray()
    async for chunk in ctx.body():
        out += chunk
        if len(out) > MAX_COMPLETE_BODY:
            raise S3Error("MaxMessageLengthExceeded")
    return bytes(out)


async def complete_multipart_upload(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket()
    key = ctx.endpoint.key
    conditions = write_conditions(ctx.headers)
    checksum = complete_checksum(ctx.headers)
    requested = _requested_parts(await _complete_body(ctx))

    checks = CompleteChecks(checksum, conditions if conditions.any else None)

    async def work() -> Response:
        manifest = await ctx.objects.complete_upload(bucket, key,
                                                     ctx.endpoint.param("uploadId") or "",
                                                     ctx.user_id, requested, checks)
        return _complete_result(bucket.name, key, manifest,
                                write_version_header(bucket, manifest))

    # A Complete of many parts can take long: past slow_answer_seconds it answers 200 at
    # once and keeps the connection alive, as S3 does (gateway/keepalive.py).
    return await answer_when_done(work(), ctx.request_id, ctx.request.url.path,
                                  ctx.config.gateway.slow_answer_seconds)


async def abort_multipart_upload(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket()
    await ctx.objects.abort_upload(bucket, ctx.endpoint.key,
                                   ctx.endpoint.param("uploadId") or "", ctx.user_id)
    return Response(status_code=204)


async def list_parts(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket()
    upload = await _upload(ctx, bucket)
    record = upload.record
    parts = await ctx.objects.list_parts(upload)
    try:
        marker = int(ctx.endpoint.param("part-number-marker", "0") or 0)
        max_parts = min(int(ctx.endpoint.param("max-parts", "1000") or 1000), 1000)
    except ValueError as exc:
        raise S3Error("InvalidArgument") from exc
    numbers = sorted(n for n in parts if n > marker)
    page, truncated = numbers[:max_parts], len(numbers) > max_parts
    algorithm = record["manifest"].get("checksum_algorithm")
    fields: list[tuple[str, object]] = [
        ("Bucket", bucket.name), ("Key", ctx.endpoint.key), ("UploadId", record["upload_id"]),
        ("Initiator", _owner(ctx, record["owner"])), ("Owner", _owner(ctx, record["owner"])),
        ("StorageClass", "STANDARD"), ("PartNumberMarker", marker),
        ("NextPartNumberMarker", page[-1] if page else marker), ("MaxParts", max_parts),
        ("IsTruncated", truncated), ("ChecksumAlgorithm", algorithm),
        ("ChecksumType", record["manifest"].get("checksum_type")),
    ]
    for n in page:
        p = parts[n]
        entry: list[tuple[str, object]] = [("PartNumber", n), ("LastModified",
                                           iso8601(_tag_time(p.archive_tag))),
                                           ("ETag", f'"{p.etag}"'), ("Size", p.size)]
        entry.extend((f"Checksum{alg}", v) for alg, v in p.checksums.items())
        fields.append(("Part", entry))
    return Response(document("ListPartsResult", fields), media_type=XML)


def _tag_time(tag: str) -> float:
    return version_time_ms(tag.rsplit(".", 1)[-1]) / 1000


MAX_UPLOADS = 1000


@dataclass
class UploadPage:
    """One ListMultipartUploads page: uploads and common prefixes, at most max-uploads."""

    uploads: list[dict] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    truncated: bool = False
    next_key: str | None = None
    next_upload_id: str | None = None


def _common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    at = key.find(delimiter, len(prefix)) if delimiter else -1
    return None if at < 0 else key[:at + len(delimiter)]


def page_uploads(rows: list[dict], prefix: str, delimiter: str, key_marker: str,
                 upload_id_marker: str, max_uploads: int) -> UploadPage:
    """The page after the markers, from rows sorted by key then upload id (initiation order).

    Without key-marker the upload-id-marker is ignored; with it, the marker key's uploads
    after that id are listed, then later keys. A key-marker naming a common prefix (the
    last entry of a page) skips every key under it, as ListObjects does.
    """
    page = UploadPage()
    if max_uploads == 0:
        return page
    upload_id_marker = upload_id_marker if key_marker else ""
    rolled = key_marker if key_marker and key_marker.startswith(prefix) and \
        _common_prefix(key_marker, prefix, delimiter) == key_marker else None
    for row in rows:
        key = row["key"]
        if not key.startswith(prefix) or key < key_marker:
            continue
        if key == key_marker and (not upload_id_marker or row["upload_id"] <= upload_id_marker):
            continue
        if rolled is not None and key.startswith(rolled):
            continue
        common = _common_prefix(key, prefix, delimiter)
        if common is not None and page.prefixes and page.prefixes[-1] == common:
            continue  # sorted rows: a prefix's keys are adjacent
        if len(page.uploads) + len(page.prefixes) == max_uploads:
            page.truncated = True
            break
        if common is not None:
            page.prefixes.append(common)
            page.next_key, page.next_upload_id = common, None
        else:
            page.uploads.append(row)
            page.next_key, page.next_upload_id = key, row["upload_id"]
    return page


def _max_uploads(ctx: RequestContext) -> int:
    raw = ctx.endpoint.param("max-uploads") or str(MAX_UPLOADS)
    try:
        value = int(raw)
    except ValueError as exc:
        raise S3Error("InvalidArgument", "Provided max-uploads not an integer or within "
                      "integer range", extra={"ArgumentName": "max-uploads",
                                              "ArgumentValue": raw}) from exc
    if value < 0:
        raise S3Error("InvalidArgument", "Argument max-uploads must be an integer between 0 "
                      "and 2147483647", extra={"ArgumentName": "max-uploads",
                                               "ArgumentValue": raw})
    return min(value, MAX_UPLOADS)


def _owner(ctx: RequestContext, owner: str) -> list[tuple[str, object]]:
    return [("ID", owner), ("DisplayName", ctx.config.display_name(owner))]


def _upload_entry(ctx: RequestContext, row: dict, enc: Callable[[str], str]
                  ) -> list[tuple[str, object]]:
    meta = row.get("manifest") or {}
    return [("Key", enc(row["key"])), ("UploadId", row["upload_id"]),
            ("Initiator", _owner(ctx, row["owner"])), ("Owner", _owner(ctx, row["owner"])),
            ("StorageClass", "STANDARD"), ("Initiated", iso8601(row["initiated"])),
            ("ChecksumAlgorithm", meta.get("checksum_algorithm")),
            ("ChecksumType", meta.get("checksum_type"))]


async def list_multipart_uploads(ctx: RequestContext) -> Response:
    """encoding-type=url encodes Delimiter, KeyMarker, Prefix, NextKeyMarker, each Key and
    each common prefix (not the upload ids)."""
    bucket = await ctx.bucket()
    ep = ctx.endpoint
    prefix, delimiter = ep.param("prefix", "") or "", ep.param("delimiter", "") or ""
    key_marker = ep.param("key-marker", "") or ""
    upload_id_marker = ep.param("upload-id-marker", "") or ""
    max_uploads = _max_uploads(ctx)
    encoding = ep.param("encoding-type")
    enc = url_encoder(encoding)
    rows = await ctx.objects.list_uploads(bucket, prefix)
    page = page_uploads(rows, prefix, delimiter, key_marker, upload_id_marker, max_uploads)
    fields: list[tuple[str, object]] = [
        ("Bucket", bucket.name), ("KeyMarker", enc(key_marker)),
        ("UploadIdMarker", upload_id_marker),
        ("NextKeyMarker", None if page.next_key is None else enc(page.next_key)),
        ("Prefix", enc(prefix)), ("Delimiter", enc(delimiter) if delimiter else None),
        ("NextUploadIdMarker", page.next_upload_id), ("MaxUploads", max_uploads),
        ("IsTruncated", page.truncated)]
    fields.extend(("Upload", _upload_entry(ctx, row, enc)) for row in page.uploads)
    fields.extend(("CommonPrefixes", [("Prefix", enc(p))]) for p in page.prefixes)
    fields.append(("EncodingType", encoding))
    return Response(document("ListMultipartUploadsResult", fields), media_type=XML)
