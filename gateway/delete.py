"""DeleteObject and DeleteObjects: tombstone versions, so a volume that was down cannot
bring a deleted object back (docs/durability.md)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator

from starlette.responses import Response, StreamingResponse

from gateway.context import RequestContext
from gateway.errors import S3Error
from gateway.put import content_md5
from gateway.router import MAX_KEY_BYTES
from gateway.xml import child_text, children, fragment, parse, stream_close, stream_open

XML = "application/xml"
MAX_DELETE_KEYS = 1000
MAX_DELETE_BODY = 2 * 1024 * 1024


async def delete_object(ctx: RequestContext) -> Response:
    await ctx.objects.delete(await ctx.bucket(), ctx.endpoint.key, ctx.user_id)
    return Response(status_code=204)


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
    keys = []
    for obj in objects:
        key = child_text(obj, "Key")
        if key is None:
            raise S3Error("MalformedXML")
        keys.append(key)
    invalid = [(k, S3Error("KeyTooLongError" if k else "InvalidArgument")) for k in keys
               if not k or len(k.encode()) > MAX_KEY_BYTES]
    valid = [k for k in keys if k and len(k.encode()) <= MAX_KEY_BYTES]
    results = ctx.objects.delete_many(bucket, valid, ctx.user_id)
    # The first result means the batch is valid and the clock synced: the answer can start.
    first = await anext(results, None) if valid else None

    async def answer() -> AsyncIterator[bytes]:
        yield stream_open("DeleteResult")
        for key, error in invalid:
            yield fragment("Error", [("Key", key), ("Code", error.code),
                                     ("Message", error.message)])
        finished = first
        try:
            while finished is not None:
                key, error = finished
                if error is not None:
                    yield fragment("Error", [("Key", key), ("Code", error.code),
                                             ("Message", error.message)])
                elif not quiet:
                    yield fragment("Deleted", [("Key", key)])
                finished = await anext(results, None)
        finally:
            await results.aclose()  # a client that left stops the rest
        yield stream_close("DeleteResult")

    return StreamingResponse(answer(), media_type=XML)


def _check_md5(ctx: RequestContext, raw: bytes) -> None:
    expected = content_md5(ctx.headers)
    if expected is not None and expected != hashlib.md5(raw).digest():
        raise S3Error("BadDigest", extra={"CalculatedDigest":
                                          base64.b64encode(hashlib.md5(raw).digest()).decode()})
