"""GetObject and HeadObject: conditions, single ranges or parts, streamed decoded bytes."""

from __future__ import annotations

import re

from starlette.responses import Response, StreamingResponse

from erasure import RangeNotSatisfiable, resolve_range
from gateway.conditions import NOT_MODIFIED, evaluate
from gateway.context import RequestContext
from gateway.errors import S3Error
from gateway.object_headers import object_headers
from gateway.objects.bucket_records import BucketRecord
from gateway.objects.read_ahead import ReadAhead
from gateway.objects.reader import ObjectReader
from gateway.query import int_in_range
from gateway.versioning import object_version_header
from gateway.xml import http_date
from shardgate.manifest import ObjectManifest, PartManifest

MAX_PART_NUMBER = 10_000
# What a header value may hold: visible ASCII, spaces and tabs (no CR, LF or controls).
HEADER_SAFE = re.compile(r"[\x20-\x7e\t]*")

# Query parameters that override response headers (GetObject "response-*" overrides).
_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


async def _manifest(ctx: RequestContext, bucket: BucketRecord,
                    inline: dict[int, bytes] | None = None,
                    ahead: ReadAhead | None = None) -> tuple[dict[str, str], ObjectManifest]:
    """The version asked for (the current one without ?versionId) and its version
    header; a delete marker asked for by id is 405, as S3 answers. `inline` collects
    a small object's fragments on the way, `ahead` opens a ranged GET's first reads."""
    manifest = await ctx.readable_version(bucket, ctx.endpoint.key,
                                          ctx.endpoint.param("versionId"), inline=inline,
                                          ahead=ahead)
    if manifest.deleted:
        raise S3Error("MethodNotAllowed", headers={
            "x-amz-delete-marker": "true", "x-amz-version-id": manifest.public_version_id,
            "Last-Modified": http_date(manifest.last_modified), "Allow": "DELETE"})
    return object_version_header(bucket, manifest), manifest


def uploaded_in_parts(manifest: ObjectManifest) -> bool:
    """Whether a client sees `manifest` as a multipart object: its ETag says so (a
    single PUT, or a copy, has a plain MD5 ETag and one part)."""
    return "-" in manifest.etag


def requested_part(ctx: RequestContext) -> int | None:
    """The ?partNumber asked for, checked before the object is read."""
    raw = ctx.endpoint.param("partNumber")
    if raw is None:
        return None
    number = int_in_range(raw, 1, MAX_PART_NUMBER, "partNumber",
                          "Part number must be an integer between 1 and 10000, inclusive.")
    if ctx.headers.get("range"):
        raise S3Error("InvalidRequest", "Cannot specify both Range header and partNumber "
                                        "query parameter.")
    return number


def part_span(manifest: ObjectManifest, number: int) -> tuple[int, int, PartManifest | None]:
    """(first byte, part size, part) of the `number`th part; a plain object is its own
    part 1 (part None). Parts count in order, so 1..x-amz-mp-parts-count reads it all."""
    if not uploaded_in_parts(manifest):
        if number != 1:
            raise _no_such_part(number, 1)
        return 0, manifest.size, None
    if number > len(manifest.parts):
        raise _no_such_part(number, len(manifest.parts))
    start = sum(p.size for p in manifest.parts[:number - 1])
    part = manifest.parts[number - 1]
    return start, part.size, part


def _no_such_part(number: int, count: int) -> S3Error:
    return S3Error("InvalidPartNumber", extra={"PartNumberRequested": str(number),
                                               "ActualPartCount": str(count)})


def _plan(ctx: RequestContext, manifest: ObjectManifest, number: int | None
          ) -> tuple[int, dict[str, str], tuple[int, int] | None]:
    """(status, headers, range) for a GET/HEAD of `manifest`, or a raised S3Error."""
    # RFC 9110 section 13.2.2: preconditions are evaluated before Range.
    cond = evaluate(ctx.headers, manifest.etag, manifest.last_modified)
    if cond == NOT_MODIFIED:
        return 304, {"ETag": f'"{manifest.etag}"',
                     "Last-Modified": http_date(manifest.last_modified)}, None
    checksum_mode = ctx.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED"
    if number is not None:
        return _plan_part(ctx, manifest, number, checksum_mode)
    range_header = ctx.headers.get("range")
    wanted = None
    if range_header:
        try:
            wanted = resolve_range(range_header, manifest.size)
        except RangeNotSatisfiable as exc:
            raise S3Error("InvalidRange", extra={"RangeRequested": range_header,
                                                 "ActualObjectSize": str(manifest.size)},
                          headers={"Content-Range": f"bytes */{manifest.size}"}) from exc
    headers = _headers(ctx, manifest, checksum_mode and wanted is None)
    if wanted is not None:
        start, end = wanted
        headers["Content-Range"] = f"bytes {start}-{end}/{manifest.size}"
        headers["Content-Length"] = str(end - start + 1)
        return 206, headers, wanted
    headers["Content-Length"] = str(manifest.size)
    return 200, headers, None


def _plan_part(ctx: RequestContext, manifest: ObjectManifest, number: int,
               checksum_mode: bool) -> tuple[int, dict[str, str], tuple[int, int] | None]:
    """A part answers like the range it covers (206), with the object's ETag, the parts
    count of a multipart object and, in checksum mode, the part's own checksum."""
    start, size, part = part_span(manifest, number)
    headers = _headers(ctx, manifest, checksum_mode and part is None)
    if part is not None:
        headers["x-amz-mp-parts-count"] = str(len(manifest.parts))
        if checksum_mode:
            for algorithm, value in part.checksums.items():
                headers[f"x-amz-checksum-{algorithm.lower()}"] = value
            if part.checksums and manifest.checksum_type:
                headers["x-amz-checksum-type"] = manifest.checksum_type
    headers["Content-Length"] = str(size)
    if size == 0:  # no byte range names an empty part
        return 200, headers, None
    end = start + size - 1
    headers["Content-Range"] = f"bytes {start}-{end}/{manifest.size}"
    return 206, headers, (start, end)


def _headers(ctx: RequestContext, manifest: ObjectManifest, with_checksum: bool
             ) -> dict[str, str]:
    headers = object_headers(manifest, with_checksum=with_checksum)
    for param, header in _OVERRIDES.items():
        value = ctx.endpoint.param(param)
        if value is None:
            continue
        if ctx.user is None:
            # S3's rule: an anonymous link cannot make a public object answer as, say,
            # text/html from this origin.
            raise S3Error("InvalidRequest", "Request specific response headers cannot be "
                                            "used for anonymous GET requests.")
        if not HEADER_SAFE.fullmatch(value):
            raise S3Error("InvalidArgument", f"{param} must be printable ASCII.",
                          extra={"ArgumentName": param, "ArgumentValue": value})
        headers[header] = value
    return headers


async def head_object(ctx: RequestContext) -> Response:
    number = requested_part(ctx)
    version, manifest = await _manifest(ctx, await ctx.bucket())
    status, headers, _ = _plan(ctx, manifest, number)
    return Response(status_code=status, headers={**headers, **version})


async def get_object(ctx: RequestContext) -> Response:
    number = requested_part(ctx)
    inline: dict[int, bytes] = {}
    bucket = await ctx.bucket()
    ahead = _read_ahead(ctx, bucket) if number is None else None
    try:
        version, manifest = await _manifest(ctx, bucket, inline, ahead)
        status, headers, wanted = _plan(ctx, manifest, number)
        headers = {**headers, **version}
        if status == 304 or (number is not None and wanted is None):  # 304, or empty part
            return Response(status_code=status, headers=headers)
        start, end = wanted if wanted is not None else (0, manifest.size - 1)
        reader = await ctx.objects.open(manifest, start, end, inline, ahead)
    finally:
        if ahead is not None:
            ahead.close()  # the reads the reader did not take
    return ObjectResponse(reader, status, headers)


def _read_ahead(ctx: RequestContext, bucket: BucketRecord) -> ReadAhead | None:
    """For a ranged GET of the current version, the reads to open with `latest`."""
    range_header = ctx.headers.get("range")
    if not range_header or ctx.endpoint.param("versionId") is not None:
        return None
    return ctx.objects.read_ahead(bucket, ctx.endpoint.key, range_header)


class ObjectResponse(StreamingResponse):
    """Streams an object and always releases its volume reads, even when the client
    leaves before the first byte (the body generator then never runs). A body already
    decoded whole (a small object) goes out in one message, without the streaming
    machinery: no task listening for a disconnect that can only come after it."""

    def __init__(self, reader: ObjectReader, status: int, headers: dict[str, str]) -> None:
        self._reader = reader
        super().__init__(reader.stream(), status_code=status, headers=headers, media_type=None)

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001 - ASGI triple
        try:
            body = self._reader.body_in_hand()
            if body is None:
                await super().__call__(scope, receive, send)
                return
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})
            await send({"type": "http.response.body", "body": body})
        finally:
            self._reader.close()
