"""Multipart uploads: create, upload part, complete, abort, list parts and uploads.

Parts are erasure-coded like objects and placed by the final object's key, so every
fragment archive of the finished object sits on that key's placement. Upload and part
records live on the placement's volumes; Complete commits a manifest that lists the
parts, and the part archives become the object's. Complete and Abort each end the upload
on the volumes only after claiming it on a write quorum (gateway/multipart_end.py),
so of two racing requests exactly one wins and the object is never left half-made.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from dataclasses import replace

from starlette.responses import Response

from gateway.checksums import ALGORITHMS, CRC_ALGORITHMS, composite, full_object
from gateway.context import RequestContext
from gateway.errors import S3Error, quorum_lost
from gateway.multipart_end import (
    UploadGone,
    abort_on,
    claim_quorum,
    claim_stragglers,
    commit_where_missing,
    complete_on,
    finish_ended,
)
from gateway.object_headers import stored_headers
from gateway.put import stage_verified
from gateway.reader import find_latest
from gateway.volume_client import VolumeNotFound
from gateway.writer import abort_staged
from gateway.xml import child_text, children, document, iso8601, parse
from shardgate.manifest import ErasureParams, ObjectManifest, PartManifest
from shardgate.versionid import new_version_id, version_time_ms

XML = "application/xml"
MAX_PART_SIZE = 5 * 1024**3
MIN_PART_SIZE = 5 * 1024**2
MAX_PARTS = 10_000


async def _quorum_calls(ctx: RequestContext, calls: list) -> list:
    results = await asyncio.gather(*calls, return_exceptions=True)
    ok = [r for r in results if not isinstance(r, BaseException)]
    if len(ok) < ctx.cluster.write_quorum:
        raise quorum_lost("Too few storage volumes accepted the upload record.")
    return ok


async def _upload(ctx: RequestContext, incarnation: str) -> tuple[dict, tuple[str, ...]]:
    """The upload record named by ?uploadId for this key (NoSuchUpload if absent)."""
    upload_id = ctx.endpoint.param("uploadId") or ""
    key = ctx.endpoint.key
    placement = ctx.cluster.placement(incarnation, key)
    if not upload_id or len(upload_id) > 64 or not upload_id.isalnum():
        raise S3Error("NoSuchUpload", extra={"UploadId": upload_id})
    results = await asyncio.gather(*(ctx.cluster.volumes.get_upload(vid, upload_id)
                                     for vid in placement), return_exceptions=True)
    answered = [r for r in results if not isinstance(r, BaseException)]
    found = [r for r in answered if r]
    if not found:
        if len(answered) > ctx.cluster.width - ctx.cluster.write_quorum:
            raise S3Error("NoSuchUpload", extra={"UploadId": upload_id})
        raise quorum_lost("Too few storage volumes answered.")
    record = found[0]
    if record["key"] != key or record["incarnation"] != incarnation:
        raise S3Error("NoSuchUpload", extra={"UploadId": upload_id})
    if record["owner"] != ctx.user_id:
        raise S3Error("AccessDenied")
    return record, placement


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
    upload_id = new_version_id()
    placement = ctx.cluster.placement(bucket.incarnation, key)
    record = {"incarnation": bucket.incarnation, "bucket": bucket.name, "key": key,
              "upload_id": upload_id, "initiated": time.time(), "owner": ctx.user_id,
              "manifest": {"content_type": content_type, "headers": kept,
                           "metadata": metadata, "checksum_algorithm": algorithm,
                           "checksum_type": checksum_type}}
    await _quorum_calls(ctx, [ctx.cluster.volumes.put_upload(vid, record) for vid in placement])
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
    record, placement = await _upload(ctx, bucket.incarnation)
    verified = await stage_verified(ctx, placement, MAX_PART_SIZE)
    staged, algorithm, checksum = verified.staged, verified.algorithm, verified.checksum
    tag = f"{record['upload_id']}.{number:05d}.{new_version_id()}"
    checksums = {algorithm: checksum} if algorithm and checksum else {}
    part = PartManifest(number, staged.size, staged.digests.md5_hex, tag,
                        staged.staged_placement(), False, checksums)
    calls = []
    for index, stage_id in staged.stage_ids.items():
        volume_id = staged.placement[index]
        calls.append(ctx.cluster.volumes.commit_part(volume_id, {
            "upload_id": record["upload_id"], "part_number": number, "stage_id": stage_id,
            "archive_id": part.archive_id(bucket.incarnation, ctx.endpoint.key, index),
            "manifest": {**part.__dict__, "placement": list(part.placement)}}))
    results = await asyncio.gather(*calls, return_exceptions=True)
    failed = [i for i, r in zip(staged.stage_ids, results, strict=True)
              if isinstance(r, BaseException)]
    if len(results) - len(failed) < ctx.cluster.write_quorum:
        await abort_staged(ctx.cluster, staged)
        # the volumes refuse a part once the upload has ended (completed or aborted)
        gone = sum(isinstance(r, VolumeNotFound) for r in results)
        if gone > ctx.cluster.width - ctx.cluster.write_quorum:
            raise S3Error("NoSuchUpload", extra={"UploadId": record["upload_id"]})
        raise quorum_lost("Too few storage volumes accepted the part.")
    if failed:
        await abort_staged(ctx.cluster, replace(staged, stage_ids={
            i: staged.stage_ids[i] for i in failed}))
    headers = {"ETag": f'"{part.etag}"'}
    headers.update(verified.echo_headers())
    return Response(status_code=200, headers=headers)


async def _part_versions(ctx: RequestContext, upload_id: str, placement: tuple[str, ...]
                         ) -> dict[int, dict[str, tuple[PartManifest, int]]]:
    """Per part number, every committed version (by archive tag) and how many volumes
    list it, merged over the placement's volumes."""
    results = await asyncio.gather(*(ctx.cluster.volumes.list_parts(vid, upload_id)
                                     for vid in placement), return_exceptions=True)
    answered = [r for r in results if not isinstance(r, BaseException)]
    if len(answered) <= ctx.cluster.width - ctx.cluster.write_quorum:
        raise quorum_lost("Too few storage volumes answered.")
    versions: dict[int, dict[str, tuple[PartManifest, int]]] = {}
    for rows in answered:
        for row in rows:
            raw = row["manifest"]
            part = PartManifest(**{**raw, "placement": tuple(raw["placement"])})
            seen = versions.setdefault(part.number, {})
            count = seen[part.archive_tag][1] if part.archive_tag in seen else 0
            seen[part.archive_tag] = (part, count + 1)
    return versions


async def _parts(ctx: RequestContext, upload_id: str,
                 placement: tuple[str, ...]) -> dict[int, PartManifest]:
    """Newest committed part per number (what ListParts shows)."""
    versions = await _part_versions(ctx, upload_id, placement)
    return {n: seen[max(seen)][0] for n, seen in versions.items()}


def _choose(versions: dict[str, tuple[PartManifest, int]], etag: str) -> PartManifest | None:
    """The version of a part that Complete uses: the client's ETag, then the one most
    volumes hold (a re-upload still landing is on few), then the newest."""
    matching = [(count, tag, part) for tag, (part, count) in versions.items()
                if part.etag == etag]
    return max(matching, key=lambda m: (m[0], m[1]))[2] if matching else None


def _object_checksum(record: dict, parts: list[PartManifest]) -> tuple[dict[str, str], str]:
    meta = record["manifest"]
    algorithm, kind = meta.get("checksum_algorithm"), meta.get("checksum_type")
    if not algorithm:
        common = {next(iter(p.checksums), None) for p in parts}
        if len(common) != 1 or None in common or next(iter(common)) not in CRC_ALGORITHMS:
            return {}, ""
        algorithm, kind = common.pop(), "FULL_OBJECT"
    if any(algorithm not in p.checksums for p in parts):
        return {}, ""
    digests = [base64.b64decode(p.checksums[algorithm]) for p in parts]
    if kind == "FULL_OBJECT":
        value = full_object([(d, p.size) for d, p in zip(digests, parts, strict=True)],
                            algorithm)
    else:
        value = composite(digests, algorithm)
    return {algorithm: value}, kind


def _requested_parts(body: bytes) -> list[tuple[int, str, dict[str, str]]]:
    """(part number, ETag, checksums) of each <Part> of a Complete body, checked."""
    root = parse(body)
    requested = []
    for node in children(root, "Part"):
        try:
            number = int(child_text(node, "PartNumber") or "")
        except ValueError as exc:
            raise S3Error("MalformedXML") from exc
        etag = (child_text(node, "ETag") or "").strip().strip('"')
        sums = {alg: child_text(node, f"Checksum{alg}") for alg in ALGORITHMS}
        requested.append((number, etag, {k: v for k, v in sums.items() if v}))
    if not requested:
        raise S3Error("MalformedXML", "You must specify at least one part.")
    if len(requested) > MAX_PARTS:
        raise S3Error("TooManyParts")
    numbers = [n for n, _, _ in requested]
    if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
        raise S3Error("InvalidPartOrder")
    return requested


async def _chosen_parts(ctx: RequestContext, upload_id: str, placement: tuple[str, ...],
                        requested: list[tuple[int, str, dict[str, str]]]
                        ) -> list[PartManifest]:
    versions = await _part_versions(ctx, upload_id, placement)
    chosen: list[PartManifest] = []
    for number, etag, sums in requested:
        part = _choose(versions.get(number, {}), etag)
        if part is None:
            raise S3Error("InvalidPart", extra={"PartNumber": str(number), "ETag": etag})
        for alg, value in sums.items():
            if part.checksums.get(alg) not in (None, value):
                raise S3Error("InvalidPart", f"The {alg} checksum of part {number} does not "
                                             "match.")
        chosen.append(part)
    for part in chosen[:-1]:
        if part.size < MIN_PART_SIZE:
            raise S3Error("EntityTooSmall", extra={"PartNumber": str(part.number),
                                                   "ProposedSize": str(part.size),
                                                   "MinSizeAllowed": str(MIN_PART_SIZE)})
    return chosen


def _complete_result(bucket: str, key: str, manifest: ObjectManifest) -> Response:
    fields: list[tuple[str, object]] = [
        ("Location", f"/{bucket}/{key}"), ("Bucket", bucket), ("Key", key),
        ("ETag", f'"{manifest.etag}"')]
    for alg, value in manifest.checksums.items():
        fields.append((f"Checksum{alg}", value))
    if manifest.checksum_type:
        fields.append(("ChecksumType", manifest.checksum_type))
    return Response(document("CompleteMultipartUploadResult", fields), media_type=XML)


async def _ended(ctx: RequestContext, bucket: str, incarnation: str, upload_id: str,
                 token: str, aborting: bool) -> Response:
    """The upload has ended on most volumes (completed or aborted).

    If the key's latest version is what it became, the volumes still holding it are
    rolled forward and a Complete answers as the first one did (AWS does so, and a lost
    answer then costs the client nothing); an Abort frees what is left. Else NoSuchUpload.
    """
    key = ctx.endpoint.key
    latest = await find_latest(ctx.cluster, incarnation, key)
    completed = latest if latest is not None and latest.upload_id == upload_id else None
    if upload_id and (completed is not None or aborting):
        await finish_ended(ctx, ctx.cluster.placement(incarnation, key), upload_id, token,
                           completed)
    if aborting or completed is None or completed.owner != ctx.user_id:
        raise S3Error("NoSuchUpload", extra={"UploadId": upload_id})
    return _complete_result(bucket, key, completed)


async def complete_multipart_upload(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket()
    key = ctx.endpoint.key
    try:
        record, placement = await _upload(ctx, bucket.incarnation)
        upload_id = record["upload_id"]
        requested = _requested_parts(await ctx.read_small_body(4 * 1024 * 1024))
        try:
            chosen = await _chosen_parts(ctx, upload_id, placement, requested)
        except S3Error as exc:
            if exc.code == "InvalidPart":  # or did an Abort take the parts meanwhile?
                await _upload(ctx, bucket.incarnation)
            raise
    except S3Error as exc:
        if exc.code != "NoSuchUpload" or not exc.extra.get("UploadId"):
            raise
        return await _ended(ctx, bucket.name, bucket.incarnation, exc.extra["UploadId"],
                            new_version_id(), aborting=False)
    etag = hashlib.md5(b"".join(bytes.fromhex(p.etag) for p in chosen)).hexdigest()
    checksums, checksum_type = _object_checksum(record, chosen)
    meta = record["manifest"]
    ec = ctx.cluster.config.erasure
    manifest = ObjectManifest(
        bucket=bucket.name, incarnation=bucket.incarnation, key=key,
        version_id=new_version_id(), last_modified=time.time(), owner=ctx.user_id,
        size=sum(p.size for p in chosen), etag=f"{etag}-{len(chosen)}",
        content_type=meta["content_type"], headers=meta["headers"],
        metadata=meta["metadata"], checksums=checksums, checksum_type=checksum_type,
        erasure=ErasureParams(ec.k, ec.m, ec.ec_type, ec.segment_size), parts=tuple(chosen),
        upload_id=upload_id)
    token = manifest.version_id
    try:
        claims = await claim_quorum(ctx.cluster, placement, upload_id, token, "complete")
    except UploadGone:
        return await _ended(ctx, bucket.name, bucket.incarnation, upload_id, token,
                            aborting=False)
    if await complete_on(ctx, claims.held, manifest, token) < ctx.cluster.write_quorum:
        raise quorum_lost("Too few storage volumes committed the upload.")
    late = await claim_stragglers(ctx.cluster, claims.contended, upload_id, token, "complete")
    await complete_on(ctx, late, manifest, token)
    await commit_where_missing(ctx, claims.missing, manifest)
    return _complete_result(bucket.name, key, manifest)


async def abort_multipart_upload(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket()
    record, placement = await _upload(ctx, bucket.incarnation)
    upload_id = record["upload_id"]
    token = new_version_id()
    try:
        claims = await claim_quorum(ctx.cluster, placement, upload_id, token, "abort")
    except UploadGone:  # completed (or aborted) by a request that won the race
        return await _ended(ctx, bucket.name, bucket.incarnation, upload_id, token,
                            aborting=True)
    if await abort_on(ctx, claims.held, upload_id, token) < ctx.cluster.write_quorum:
        raise quorum_lost("Too few storage volumes aborted the upload.")
    late = await claim_stragglers(ctx.cluster, claims.contended, upload_id, token, "abort")
    await abort_on(ctx, late, upload_id, token)
    return Response(status_code=204)


async def list_parts(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket()
    record, placement = await _upload(ctx, bucket.incarnation)
    parts = await _parts(ctx, record["upload_id"], placement)
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
        ("Initiator", [("ID", record["owner"]), ("DisplayName", record["owner"])]),
        ("Owner", [("ID", record["owner"]), ("DisplayName", record["owner"])]),
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


async def list_multipart_uploads(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket()
    prefix = ctx.endpoint.param("prefix", "") or ""
    results = await asyncio.gather(*(ctx.cluster.volumes.list_uploads(vid, bucket.incarnation,
                                                                      prefix)
                                     for vid in ctx.cluster.volume_ids), return_exceptions=True)
    uploads: dict[str, dict] = {}
    for rows in results:
        if isinstance(rows, BaseException):
            continue
        for row in rows:
            uploads[row["upload_id"]] = row
    fields: list[tuple[str, object]] = [("Bucket", bucket.name), ("KeyMarker", ""),
                                        ("UploadIdMarker", ""), ("Prefix", prefix),
                                        ("MaxUploads", 1000), ("IsTruncated", False)]
    for row in sorted(uploads.values(), key=lambda r: (r["key"], r["upload_id"])):
        fields.append(("Upload", [("Key", row["key"]), ("UploadId", row["upload_id"]),
                                  ("Initiator", [("ID", row["owner"])]),
                                  ("Owner", [("ID", row["owner"])]),
                                  ("StorageClass", "STANDARD"),
                                  ("Initiated", iso8601(row["initiated"]))]))
    return Response(document("ListMultipartUploadsResult", fields), media_type=XML)
