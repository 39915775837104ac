"""PutObject: stream, stage on the placement, verify digests, then commit."""

from __future__ import annotations

import base64
import binascii
import time
from typing import NamedTuple

from starlette.responses import Response

from gateway.checksums import algorithm_from_headers, trailer_checksum
from gateway.commit import commit_staged
from gateway.context import RequestContext
from gateway.digests import BodyDigests
from gateway.errors import S3Error
from gateway.object_headers import stored_headers
from gateway.reader import find_latest
from gateway.writer import Staged, abort_staged, stage_body
from shardgate.manifest import ErasureParams, ObjectManifest, PartManifest
from shardgate.versionid import new_version_id

MAX_OBJECT_SIZE = 5 * 1024**3
DEFAULT_CHECKSUM = "CRC64NVME"  # what S3 stores when the client sends none


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


def declared_size(headers: dict[str, str]) -> int | None:
    """The payload size the client declared, if any (decoded size for aws-chunked)."""
    if "aws-chunked" in headers.get("content-encoding", "").lower() or \
            headers.get("x-amz-content-sha256", "").startswith("STREAMING-"):
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


class Verified(NamedTuple):
    """A staged body whose size and digests matched what the client declared."""

    staged: Staged
    algorithm: str | None  # the client's checksum algorithm, else the default one
    checksum: str | None  # its base64 value
    requested: bool  # the client named the algorithm (so the answer echoes the value)

    def echo_headers(self) -> dict[str, str]:
        if not (self.requested and self.algorithm and self.checksum):
            return {}
        return {f"x-amz-checksum-{self.algorithm.lower()}": self.checksum}


async def stage_verified(ctx: RequestContext, placement: tuple[str, ...],
                         max_size: int) -> Verified:
    """Stage the request body; abort unless its size and digests are what was declared."""
    headers = ctx.headers
    md5 = content_md5(headers)
    algorithm, expected = algorithm_from_headers(headers)
    size = declared_size(headers)
    if size is None and "chunked" not in headers.get("transfer-encoding", "") \
            and "aws-chunked" not in headers.get("content-encoding", ""):
        raise S3Error("MissingContentLength")
    if size is not None and size > max_size:
        raise S3Error("EntityTooLarge", extra={"ProposedSize": str(size),
                                               "MaxSizeAllowed": str(max_size)})
    digests = BodyDigests(algorithm or DEFAULT_CHECKSUM)
    body = ctx.body()
    staged = await stage_body(ctx.cluster, placement, body, digests, size)
    try:
        if size is not None and staged.size != size:
            raise S3Error("IncompleteBody")
        if staged.size > max_size:
            raise S3Error("EntityTooLarge")
        if md5 is not None and md5 != bytes.fromhex(digests.md5_hex):
            raise S3Error("BadDigest", extra={"ExpectedDigest": md5.hex(),
                                              "CalculatedDigest": digests.md5_b64})
        if algorithm and expected is None and "x-amz-trailer" in headers:
            expected = trailer_checksum(body.trailers, algorithm)
        actual = digests.checksum_b64()
        if expected is not None and expected != actual:
            raise S3Error("BadDigest", f"The {algorithm} you specified did not match the "
                                       "calculated checksum.")
    except BaseException:
        await abort_staged(ctx.cluster, staged)
        raise
    return Verified(staged, digests.algorithm, actual, algorithm is not None)


async def put_object(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket()
    key = ctx.endpoint.key
    content_type, kept, metadata = stored_headers(ctx.headers)
    cluster = ctx.cluster
    placement = cluster.placement(bucket.incarnation, key)
    await check_write_conditions(ctx, bucket.incarnation, key)
    verified = await stage_verified(ctx, placement, MAX_OBJECT_SIZE)
    staged, algorithm, checksum = verified.staged, verified.algorithm, verified.checksum
    try:
        await check_write_conditions(ctx, bucket.incarnation, key)
    except BaseException:
        await abort_staged(cluster, staged)
        raise
    # Chosen only now: the stage answers carried each volume's clock, so this id is newer
    # than any version a quorum of the placement has committed, whatever our wall clock.
    version_id = new_version_id()
    ec = cluster.config.erasure
    inline = staged.size < cluster.config.gateway.inline_threshold
    etag = staged.digests.md5_hex
    checksums = {algorithm: checksum} if algorithm and checksum else {}
    part = PartManifest(1, staged.size, etag, version_id, staged.staged_placement(), inline,
                        checksums)
    manifest = ObjectManifest(
        bucket=bucket.name, incarnation=bucket.incarnation, key=key, version_id=version_id,
        last_modified=time.time(), owner=ctx.user_id, size=staged.size, etag=etag,
        content_type=content_type, headers=kept, metadata=metadata, checksums=checksums,
        checksum_type="FULL_OBJECT" if checksums else "",
        erasure=ErasureParams(ec.k, ec.m, ec.ec_type, ec.segment_size), parts=(part,))
    await commit_staged(cluster, staged, manifest)
    headers = {"ETag": f'"{etag}"', **verified.echo_headers()}
    if len(headers) > 1:
        headers["x-amz-checksum-type"] = "FULL_OBJECT"
    return Response(status_code=200, headers=headers)


async def check_write_conditions(ctx: RequestContext, incarnation: str, key: str) -> None:
    """Conditional writes (S3: If-None-Match "*" and If-Match on PutObject).

    Checked before the body is read and again just before commit. Between that last check
    and the commit another writer can still slip in: the volumes do not yet compare and
    set, so this narrows the race rather than closing it (docs/decisions.md).
    """
    if_none_match = ctx.headers.get("if-none-match")
    if_match = ctx.headers.get("if-match")
    if if_none_match is None and if_match is None:
        return
    if if_none_match is not None and if_none_match.strip() != "*":
        raise S3Error("NotImplemented", "If-None-Match on writes supports only '*'.")
    current = await find_latest(ctx.cluster, incarnation, key)
    if if_none_match is not None and current is not None:
        raise S3Error("PreconditionFailed", extra={"Condition": "If-None-Match"})
    if if_match is not None:
        if current is None:
            raise S3Error("NoSuchKey", extra={"Key": key})
        wanted = [t.strip().strip('"') for t in if_match.split(",")]
        if "*" not in wanted and current.etag not in wanted:
            raise S3Error("PreconditionFailed", extra={"Condition": "If-Match"})
