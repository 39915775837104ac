"""DeleteObject and DeleteObjects: tombstone versions, so a volume that was down cannot
bring a deleted object back (DESIGN.md, read path step 1)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import AsyncIterator

from starlette.responses import Response, StreamingResponse

from gateway.cluster import Cluster
from gateway.commit import commit_manifest
from gateway.context import RequestContext
from gateway.errors import S3Error, quorum_lost
from gateway.fanout import answered, first_answers
from gateway.put import content_md5
from gateway.reader import find_latest
from gateway.router import MAX_KEY_BYTES
from gateway.xml import child_text, children, fragment, parse, stream_close, stream_open
from shardgate.manifest import ObjectManifest
from shardgate.versionid import new_version_id

XML = "application/xml"
MAX_DELETE_KEYS = 1000
MAX_DELETE_BODY = 2 * 1024 * 1024
PARALLEL_DELETES = 32


async def sync_clock(cluster: Cluster) -> None:
    """Move our clock past every version committed before now: each volume reports its
    newest version id, and asking all but write_quorum - 1 of them meets every quorum."""
    need = len(cluster.volume_ids) - cluster.write_quorum + 1
    results = await first_answers({vid: cluster.volumes.health(vid)
                                   for vid in cluster.volume_ids}, need)
    if len(answered(results)) < need:
        raise quorum_lost("Too few storage volumes answered.")


async def write_tombstone(ctx: RequestContext, incarnation: str, bucket: str, key: str,
                          clock_synced: bool = False) -> None:
    if not clock_synced:
        # Reading the key first moves our clock past its newest version (see put_object),
        # so the tombstone is newer than what it deletes.
        await find_latest(ctx.cluster, incarnation, key)
    manifest = ObjectManifest(bucket=bucket, incarnation=incarnation, key=key,
                              version_id=new_version_id(), last_modified=time.time(),
                              owner=ctx.user_id, deleted=True)
    await commit_manifest(ctx.cluster, ctx.cluster.placement(incarnation, key), manifest)


async def delete_object(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket()
    await write_tombstone(ctx, bucket.incarnation, bucket.name, ctx.endpoint.key)
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
    root = parse(raw, MAX_DELETE_BODY)
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
    await sync_clock(ctx.cluster)
    limiter = asyncio.Semaphore(PARALLEL_DELETES)

    async def one(key: str) -> tuple[str, S3Error | None]:
        if not key or len(key.encode()) > MAX_KEY_BYTES:
            return key, S3Error("KeyTooLongError" if key else "InvalidArgument")
        async with limiter:
            try:
                await write_tombstone(ctx, bucket.incarnation, bucket.name, key,
                                      clock_synced=True)
            except S3Error as exc:
                return key, exc
        return key, None

    async def answer() -> AsyncIterator[bytes]:
        yield stream_open("DeleteResult")
        tasks = [asyncio.ensure_future(one(k)) for k in keys]
        try:
            for finished in asyncio.as_completed(tasks):
                key, error = await finished
                if error is not None:
                    yield fragment("Error", [("Key", key), ("Code", error.code),
                                             ("Message", error.message)])
                elif not quiet:
                    yield fragment("Deleted", [("Key", key)])
        finally:
            for task in tasks:
                task.cancel()
        yield stream_close("DeleteResult")

    return StreamingResponse(answer(), media_type=XML)


def _check_md5(ctx: RequestContext, raw: bytes) -> None:
    expected = content_md5(ctx.headers)
    if expected is not None and expected != hashlib.md5(raw).digest():
        raise S3Error("BadDigest", extra={"CalculatedDigest":
                                          base64.b64encode(hashlib.md5(raw).digest()).decode()})
