"""PutObject: read what the client declared from headers; the object layer stores it."""

from __future__ import annotations

import base64
import binascii

from starlette.responses import Response

from gateway.acl import header_acl
from gateway.checksums import algorithm_from_headers
from gateway.context import RequestContext
from gateway.errors import S3Error
from gateway.object_headers import stored_headers
from gateway.objects.ingest import Expectations, Verified
from gateway.objects.layer import ObjectAttributes, WriteConditions
from gateway.tagging import header_tags
from gateway.versioning import write_version_header

MAX_OBJECT_SIZE = 5 * 1024**3


def content_md5(headers: dict[str, str]) -> bytes | None:
    value = headers.get("content-md5")
    if value is None:
        return None
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise S3Error("InvalidDigest") from exc
    if len(digest) != 16:
        raise S3Error("InvalidDigest")
    return digest


def aws_chunked(headers: dict[str, str]) -> bool:
    """Whether the body is aws-chunked framed. Only a STREAMING-* x-amz-content-sha256 says
    so (the body reader decodes by it alone); Content-Encoding: aws-chunked with a plain
    payload hash is a plain body whose stored encoding just drops that token."""
    return headers.get("x-amz-content-sha256", "").strip().startswith("STREAMING-")


def declared_size(headers: dict[str, str]) -> int | None:
    """The payload size the client declared, if any (decoded size for aws-chunked)."""
    if aws_chunked(headers):
        raw = headers.get("x-amz-decoded-content-length")
        if raw is None:
            raise S3Error("MissingContentLength",
                          "aws-chunked uploads need x-amz-decoded-content-length.")
    else:
        raw = headers.get("content-length")
    if raw is None:
        return None
    try:
        size = int(raw)
    except ValueError as exc:
        raise S3Error("InvalidArgument", "Content-Length is not a number.") from exc
    if size < 0:
        raise S3Error("InvalidArgument", "Content-Length is negative.")
    return size


def expectations(headers: dict[str, str], max_size: int) -> Expectations:
    """What the client declared about the body: length, Content-MD5, flexible checksum."""
    md5 = content_md5(headers)
    algorithm, expected = algorithm_from_headers(headers)
    size = declared_size(headers)
    if size is None and "chunked" not in headers.get("transfer-encoding", ""):
        raise S3Error("MissingContentLength")
    return Expectations(size, max_size, md5, algorithm, expected,
                        checksum_in_trailer="x-amz-trailer" in headers)


def echo_headers(verified: Verified) -> dict[str, str]:
    """The checksum a PUT or UploadPart answers with: only one the client asked for."""
    if not verified.requested:
        return {}
    return {f"x-amz-checksum-{verified.algorithm.lower()}": verified.checksum}


def write_conditions(headers: dict[str, str]) -> WriteConditions:
    """If-None-Match and If-Match on a write: "*" or a list of ETags each."""

    def etags(value: str | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        return tuple(t.strip().removeprefix("W/").strip('"') for t in value.split(","))

    return WriteConditions(etags(headers.get("if-none-match")),
                           etags(headers.get("if-match")))


async def put_object(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket()
    content_type, kept, metadata = stored_headers(ctx.headers)
    conditions = write_conditions(ctx.headers)
    result = await ctx.objects.put(
        bucket, ctx.endpoint.key, ctx.body(), expectations(ctx.headers, MAX_OBJECT_SIZE),
        ObjectAttributes(ctx.user_id, content_type, kept, metadata, header_tags(ctx.headers),
                         header_acl(ctx, ctx.user_id, bucket)),
        conditions)
    headers = {"ETag": f'"{result.manifest.etag}"', **echo_headers(result.verified),
               **write_version_header(bucket, result.manifest)}
    if any(name.startswith("x-amz-checksum-") for name in headers):
        headers["x-amz-checksum-type"] = "FULL_OBJECT"
    return Response(status_code=200, headers=headers)
