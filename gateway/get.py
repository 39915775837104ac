"""GetObject and HeadObject: conditions, single ranges, streamed decoded bytes."""

from __future__ import annotations

from starlette.responses import Response, StreamingResponse

from erasure import RangeNotSatisfiable, resolve_range
from gateway.conditions import NOT_MODIFIED, evaluate
from gateway.context import RequestContext
from gateway.errors import S3Error
from gateway.object_headers import object_headers
from gateway.objects.reader import ObjectReader
from gateway.xml import http_date
from shardgate.manifest import ObjectManifest

# Query parameters that override response headers (GetObject "response-*" overrides).
_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


async def _manifest(ctx: RequestContext) -> ObjectManifest:
    return await ctx.objects.head(await ctx.bucket(), ctx.endpoint.key)


def _plan(ctx: RequestContext, manifest: ObjectManifest) -> tuple[int, dict[str, str],
                                                                  tuple[int, int] | None]:
    """(status, headers, range) for a GET/HEAD of `manifest`, or a raised S3Error."""
    if ctx.endpoint.has("partNumber"):
        raise S3Error("NotImplemented", "GetObject with partNumber is not implemented yet.")
    # RFC 9110 section 13.2.2: preconditions are evaluated before Range.
    cond = evaluate(ctx.headers, manifest.etag, manifest.last_modified)
    if cond == NOT_MODIFIED:
        return 304, {"ETag": f'"{manifest.etag}"',
                     "Last-Modified": http_date(manifest.last_modified)}, None
    range_header = ctx.headers.get("range")
    wanted = None
    if range_header:
        try:
            wanted = resolve_range(range_header, manifest.size)
        except RangeNotSatisfiable as exc:
            raise S3Error("InvalidRange", extra={"RangeRequested": range_header,
                                                 "ActualObjectSize": str(manifest.size)},
                          headers={"Content-Range": f"bytes */{manifest.size}"}) from exc
    checksum_mode = ctx.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED"
    headers = object_headers(manifest, with_checksum=checksum_mode and wanted is None)
    for param, header in _OVERRIDES.items():
        value = ctx.endpoint.param(param)
        if value is not None:
            headers[header] = value
    if wanted is not None:
        start, end = wanted
        headers["Content-Range"] = f"bytes {start}-{end}/{manifest.size}"
        headers["Content-Length"] = str(end - start + 1)
        return 206, headers, wanted
    headers["Content-Length"] = str(manifest.size)
    return 200, headers, None


async def head_object(ctx: RequestContext) -> Response:
    manifest = await _manifest(ctx)
    status, headers, _ = _plan(ctx, manifest)
    return Response(status_code=status, headers=headers)


async def get_object(ctx: RequestContext) -> Response:
    manifest = await _manifest(ctx)
    status, headers, wanted = _plan(ctx, manifest)
    if status == 304:
        return Response(status_code=304, headers=headers)
    start, end = wanted if wanted is not None else (0, manifest.size - 1)
    reader = await ctx.objects.open(manifest, start, end)
    return ObjectResponse(reader, status, headers)


class ObjectResponse(StreamingResponse):
    """Streams an object and always releases its volume reads, even when the client
    leaves before the first byte (the body generator then never runs)."""

    def __init__(self, reader: ObjectReader, status: int, headers: dict[str, str]) -> None:
        self._reader = reader
        super().__init__(reader.stream(), status_code=status, headers=headers, media_type=None)

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001 - ASGI triple
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._reader.close()
