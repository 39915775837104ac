"""Multipart uploads in the object layer: records, parts, and ending an upload once.

Parts are erasure-coded like objects and placed by the final object's key, so every
fragment archive of the finished object sits on that key's placement. Upload and part
records live on the placement's volumes; Complete commits a manifest that lists the
parts, and the part archives become the object's. Complete and Abort each end the upload
only after claiming it on a write quorum (multipart_end), so of two racing requests
exactly one wins and the object is never left half-made.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, replace

from erasure import archive_seed
from gateway.checksums import (
    CRC_ALGORITHMS,
    ObjectChecksum,
    composite,
    full_object,
    verify_object_checksum,
)
from gateway.errors import S3Error, quorum_lost
from gateway.objects.bucket_records import BucketRecord
from gateway.objects.cluster import Cluster
from gateway.objects.commit import notify_durable
from gateway.objects.conditional import (
    Fence,
    WriteConditions,
    busy_is_conflict,
    evaluate,
    fence_for,
    key_claim,
)
from gateway.objects.ingest import Expectations, Payload, Verified, stage_verified
from gateway.objects.multipart_end import (
    UploadGone,
    abort_on,
    claim_quorum,
    claim_stragglers,
    commit_where_missing,
    complete_on,
    finish_ended,
)
from gateway.objects.part_rows import held_by, read_part_rows
from gateway.objects.reader import find_latest
from gateway.objects.volume_errors import VolumeNotFound
from gateway.objects.writer import abort_staged
from shardgate.manifest import ErasureParams, ObjectManifest, PartManifest, archive_id
from shardgate.versionid import new_version_id

log = logging.getLogger("shardgate.gateway.uploads")
MIN_PART_SIZE = 5 * 1024**2


@dataclass(frozen=True)
class Upload:
    """An upload's record as the volumes keep it, the placement it lives on, and the
    ring epoch that placed it (its parts are written there: Cluster.placing)."""

    record: dict
    placement: tuple[str, ...]
    placed_by: int

    @property
    def upload_id(self) -> str:
        return self.record["upload_id"]

    @property
    def owner(self) -> str:
        return self.record["owner"]

    @property
    def meta(self) -> dict:
        return self.record["manifest"]


@dataclass(frozen=True)
class RequestedPart:
    """One <Part> of a CompleteMultipartUpload body."""

    number: int
    etag: str
    checksums: dict[str, str]


@dataclass(frozen=True)
class CompleteChecks:
    """What a Complete request asks of the object it makes: the whole-object checksum its
    headers declare, and its write conditions (If-Match / If-None-Match), which raise if
    they no longer hold. Both are checked before anything is committed."""

    checksum: ObjectChecksum | None = None
    conditions: WriteConditions | None = None

    async def hold(self, cluster: Cluster, incarnation: str, key: str) -> None:
        """The early check, before the parts are read (conditional.py makes the one that
        counts under the key's claim)."""
        if self.conditions is not None and self.conditions.any:
            async with busy_is_conflict():
                current = await find_latest(cluster, incarnation, key)
            evaluate(self.conditions, current, key)

    async def fence(self, cluster: Cluster, incarnation: str, key: str) -> Fence | None:
        """With the key's claim held: evaluate the conditions; the commit's fence."""
        if self.conditions is None or not self.conditions.any:
            return None
        return await fence_for(cluster, incarnation, key, self.conditions)

    def claim(self, cluster: Cluster, incarnation: str, key: str
              ) -> AbstractAsyncContextManager[None]:
        if self.conditions is None or not self.conditions.any:
            return nullcontext()
        return key_claim(cluster, incarnation, key)


async def create(cluster: Cluster, bucket: BucketRecord, key: str, owner: str,
                 meta: dict) -> str:
    upload_id = new_version_id()
    record = {"incarnation": bucket.incarnation, "bucket": bucket.name, "key": key,
              "upload_id": upload_id, "initiated": time.time(), "owner": owner,
              "manifest": meta}
    placement = cluster.placement(bucket.incarnation, key)
    results = await asyncio.gather(*(cluster.volumes.put_upload(vid, record)
                                     for vid in placement), return_exceptions=True)
    accepted = [vid for vid, r in zip(placement, results, strict=True)
                if not isinstance(r, BaseException)]
    if len(accepted) < cluster.write_quorum:
        # Nobody learns this upload id: its records would only be listed until aborted.
        # Every volume is told, not only those that said yes: one that answered too late
        # for this request may have written the record all the same. Those are told in
        # the background, so a volume that is down does not hold the 503 for another
        # timeout.
        silent = [vid for vid in placement if vid not in accepted]
        cluster.in_background(_drop_quietly(cluster, silent, upload_id))
        dropped = await asyncio.gather(*(cluster.volumes.abort_upload(vid, upload_id)
                                         for vid in accepted), return_exceptions=True)
        for vid, outcome in zip(accepted, dropped, strict=True):
            if isinstance(outcome, BaseException):
                log.warning("upload %s missed its quorum; its record on %s stays: %r",
                            upload_id, vid, outcome)
        raise quorum_lost("Too few storage volumes accepted the upload record.")
    return upload_id


async def _drop_quietly(cluster: Cluster, volume_ids: list[str], upload_id: str) -> None:
    """Abort an upload on volumes that may or may not hold it; their answers do not matter."""
    await asyncio.gather(*(cluster.volumes.abort_upload(vid, upload_id) for vid in volume_ids),
                         return_exceptions=True)


async def find(cluster: Cluster, incarnation: str, key: str, upload_id: str,
               user_id: str) -> Upload:
    """The upload record for this key (NoSuchUpload if absent)."""
    placement, placed_by = cluster.placement(incarnation, key), cluster.ring.epoch
    if not upload_id or len(upload_id) > 64 or not upload_id.isalnum():
        raise S3Error("NoSuchUpload", extra={"UploadId": upload_id})
    results = await asyncio.gather(*(cluster.volumes.get_upload(vid, upload_id)
                                     for vid in placement), return_exceptions=True)
    answered = [r for r in results if not isinstance(r, BaseException)]
    found = [r for r in answered if r]
    if not found:
        if len(answered) > cluster.width - cluster.write_quorum:
            raise S3Error("NoSuchUpload", extra={"UploadId": upload_id})
        raise quorum_lost("Too few storage volumes answered.")
    record = found[0]
    if record["key"] != key or record["incarnation"] != incarnation:
        raise S3Error("NoSuchUpload", extra={"UploadId": upload_id})
    if record["owner"] != user_id:
        raise S3Error("AccessDenied")
    return Upload(record, placement, placed_by)


async def upload_part(cluster: Cluster, bucket: BucketRecord, upload: Upload, number: int,
                      body: Payload, expect: Expectations) -> tuple[PartManifest, Verified]:
    key = upload.record["key"]
    with cluster.placing(bucket.incarnation, key, (upload.placement, upload.placed_by)):
        return await _upload_part(cluster, bucket, upload, key, number, body, expect)


async def _upload_part(cluster: Cluster, bucket: BucketRecord, upload: Upload, key: str,
                       number: int, body: Payload, expect: Expectations
                       ) -> tuple[PartManifest, Verified]:
    tag = f"{upload.upload_id}.{number:05d}.{new_version_id()}"
    seeds = [archive_seed(archive_id(bucket.incarnation, key, tag, i))
             for i in range(cluster.width)]
    verified = await stage_verified(cluster, upload.placement, body, expect, seeds,
                                    part=True)
    staged = verified.staged
    part = PartManifest(number, staged.size, staged.digests.md5_hex, tag,
                        staged.staged_placement(), False,
                        {verified.algorithm: verified.checksum}, seeded=True)
    calls = []
    for index, stage_id in staged.stage_ids.items():
        volume_id = staged.placement[index]
        calls.append(cluster.volumes.commit_part(volume_id, {
            "upload_id": upload.upload_id, "part_number": number, "stage_id": stage_id,
            "archive_id": part.archive_id(bucket.incarnation, key, index),
            "manifest": {**part.__dict__, "placement": list(part.placement)}}))
    results = await asyncio.gather(*calls, return_exceptions=True)
    failed = [i for i, r in zip(staged.stage_ids, results, strict=True)
              if isinstance(r, BaseException)]
    if len(results) - len(failed) < cluster.ack_quorum:
        await abort_staged(cluster, staged)
        # the volumes refuse a part once the upload has ended (completed or aborted)
        gone = sum(isinstance(r, VolumeNotFound) for r in results)
        if gone > cluster.width - cluster.write_quorum:
            raise S3Error("NoSuchUpload", extra={"UploadId": upload.upload_id})
        raise quorum_lost("Too few storage volumes accepted the part.")
    if failed:
        await abort_staged(cluster, replace(staged, stage_ids={
            i: staged.stage_ids[i] for i in failed}))
    return part, verified


async def _part_versions(cluster: Cluster, upload_id: str, placement: tuple[str, ...]
                         ) -> dict[int, dict[str, tuple[PartManifest, int]]]:
    """Per part number, every committed version (by archive tag) and how many volumes
    list it, merged over the placement's volumes; each version names the volumes that
    hold its fragments now (part_rows.py: a rebalance may have moved some)."""
    answered, copies = await read_part_rows(cluster, upload_id, placement)
    if len(answered) <= cluster.width - cluster.write_quorum:
        raise quorum_lost("Too few storage volumes answered.")
    versions: dict[int, dict[str, tuple[PartManifest, int]]] = {}
    for tag, held in copies.items():
        part = next(iter(held.values()))
        versions.setdefault(part.number, {})[tag] = (
            replace(part, placement=held_by(held, answered, frozenset(placement))), len(held))
    return versions


async def _holders_now(cluster: Cluster, upload: Upload,
                       chosen: tuple[PartManifest, ...]) -> tuple[PartManifest, ...]:
    """The chosen parts with their holders read again: called with the upload's claims
    held, after which no rebalance moves its fragments (upload_moves.py)."""
    versions = await _part_versions(cluster, upload.upload_id, upload.placement)
    return tuple(versions.get(p.number, {}).get(p.archive_tag, (p, 0))[0] for p in chosen)


async def newest_parts(cluster: Cluster, upload: Upload) -> dict[int, PartManifest]:
    """Newest committed part per number (what ListParts shows)."""
    versions = await _part_versions(cluster, upload.upload_id, upload.placement)
    return {n: seen[max(seen)][0] for n, seen in versions.items()}


def _choose(versions: dict[str, tuple[PartManifest, int]], etag: str) -> PartManifest | None:
    """The version of a part that Complete uses: the client's ETag, then the one most
    volumes hold (a re-upload still landing is on few), then the newest."""
    matching = [(count, tag, part) for tag, (part, count) in versions.items()
                if part.etag == etag]
    return max(matching, key=lambda m: (m[0], m[1]))[2] if matching else None


def _object_checksum(meta: dict, parts: list[PartManifest]) -> tuple[dict[str, str], str]:
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


async def _chosen_parts(cluster: Cluster, upload: Upload,
                        requested: list[RequestedPart]) -> list[PartManifest]:
    versions = await _part_versions(cluster, upload.upload_id, upload.placement)
    chosen: list[PartManifest] = []
    for want in requested:
        part = _choose(versions.get(want.number, {}), want.etag)
        if part is None:
            raise S3Error("InvalidPart", extra={"PartNumber": str(want.number),
                                                "ETag": want.etag})
        for alg, value in want.checksums.items():
            if part.checksums.get(alg) not in (None, value):
                raise S3Error("InvalidPart", f"The {alg} checksum of part {want.number} "
                                             "does not match.")
        chosen.append(part)
    for part in chosen[:-1]:
        if part.size < MIN_PART_SIZE:
            raise S3Error("EntityTooSmall", extra={"PartNumber": str(part.number),
                                                   "ProposedSize": str(part.size),
                                                   "MinSizeAllowed": str(MIN_PART_SIZE)})
    return chosen


async def _ended(cluster: Cluster, incarnation: str, key: str, upload_id: str,
                 user_id: str, token: str, aborting: bool) -> ObjectManifest:
    """The upload has ended on most volumes (completed or aborted).

    If the key's latest version is what it became, the volumes still holding it are
    rolled forward and a Complete answers as the first one did (AWS does so, and a lost
    answer then costs the client nothing); an Abort frees what is left. Else NoSuchUpload.
    """
    latest = await find_latest(cluster, incarnation, key)
    completed = latest if latest is not None and latest.upload_id == upload_id else None
    if upload_id and (completed is not None or aborting):
        await finish_ended(cluster, cluster.placement(incarnation, key), upload_id, token,
                           completed)
    if aborting or completed is None or completed.owner != user_id:
        raise S3Error("NoSuchUpload", extra={"UploadId": upload_id})
    return completed


async def complete(cluster: Cluster, bucket: BucketRecord, key: str, upload_id: str,
                   user_id: str, requested: list[RequestedPart],
                   checks: CompleteChecks | None = None) -> ObjectManifest:
    """Commit the object the chosen parts make; a retry after success answers the same
    (its conditions were met by the request that completed the upload).

    A failed check leaves the upload open: the conditions are checked once the upload is
    known open, and again after the claims are held, just before the commit.
    """
    checks = checks or CompleteChecks()
    try:
        upload = await find(cluster, bucket.incarnation, key, upload_id, user_id)
        try:
            chosen = await _chosen_parts(cluster, upload, requested)
        except S3Error as exc:
            if exc.code == "InvalidPart":  # or did an Abort take the parts meanwhile?
                await find(cluster, bucket.incarnation, key, upload_id, user_id)
            raise
    except S3Error as exc:
        if exc.code != "NoSuchUpload" or not exc.extra.get("UploadId"):
            raise
        return await _ended(cluster, bucket.incarnation, key, exc.extra["UploadId"],
                            user_id, new_version_id(), aborting=False)
    await checks.hold(cluster, bucket.incarnation, key)
    # Read the key first, as a DELETE does: its answers carry the volumes' clocks, so the
    # version id minted below is newer than any version acknowledged before now, even
    # one written through a gateway whose clock runs ahead of ours.
    await find_latest(cluster, bucket.incarnation, key)
    etag = hashlib.md5(b"".join(bytes.fromhex(p.etag) for p in chosen)).hexdigest()
    checksums, checksum_type = _object_checksum(upload.meta, chosen)
    if checks.checksum is not None:
        verify_object_checksum(checks.checksum, checksums, checksum_type)
    meta = upload.meta
    ec = cluster.config.erasure
    async with checks.claim(cluster, bucket.incarnation, key):
        # Evaluated with the key's claim held, before the version id is minted, so the
        # new version is newer than the one the conditions saw.
        fence = await checks.fence(cluster, bucket.incarnation, key)
        manifest = ObjectManifest(
            bucket=bucket.name, incarnation=bucket.incarnation, key=key,
            version_id=new_version_id(), last_modified=time.time(), owner=user_id,
            size=sum(p.size for p in chosen), etag=f"{etag}-{len(chosen)}",
            content_type=meta["content_type"], headers=meta["headers"],
            metadata=meta["metadata"], checksums=checksums, checksum_type=checksum_type,
            erasure=ErasureParams(ec.k, ec.m, ec.ec_type, ec.segment_size),
            parts=tuple(chosen), upload_id=upload_id, tags=dict(meta.get("tags", {})),
            acl=meta.get("acl"),
            null_version=bucket.setting("versioning", "") != "Enabled")
        token = manifest.version_id
        try:
            claims = await claim_quorum(cluster, upload.placement, upload_id, token,
                                        "complete")
        except UploadGone:
            return await _ended(cluster, bucket.incarnation, key, upload_id, user_id, token,
                                aborting=False)
        manifest = replace(manifest, parts=await _holders_now(cluster, upload,
                                                              manifest.parts))
        committed = await complete_on(cluster, claims.held, manifest, token, fence)
    if len(committed) < cluster.ack_quorum:
        raise quorum_lost("Too few storage volumes committed the upload.")
    late = await claim_stragglers(cluster, claims.contended, upload_id, token, "complete")
    committed += await complete_on(cluster, late, manifest, token)
    committed += await commit_where_missing(cluster, claims.missing, manifest)
    notify_durable(cluster, manifest, upload.placement, set(committed))
    return manifest


async def abort(cluster: Cluster, bucket: BucketRecord, key: str, upload_id: str,
                user_id: str) -> None:
    upload = await find(cluster, bucket.incarnation, key, upload_id, user_id)
    token = new_version_id()
    try:
        claims = await claim_quorum(cluster, upload.placement, upload_id, token, "abort")
    except UploadGone:  # completed (or aborted) by a request that won the race
        await _ended(cluster, bucket.incarnation, key, upload_id, user_id, token,
                     aborting=True)
        return
    if await abort_on(cluster, claims.held, upload_id, token) < cluster.write_quorum:
        raise quorum_lost("Too few storage volumes aborted the upload.")
    late = await claim_stragglers(cluster, claims.contended, upload_id, token, "abort")
    await abort_on(cluster, late, upload_id, token)


async def list_all(cluster: Cluster, incarnation: str, prefix: str) -> list[dict]:
    """Every open upload under `prefix`, merged over the volumes placements can name,
    sorted by key and then upload id: ids come from the hybrid clock, so that is
    initiation order, and it needs no lookup of an upload-id-marker that has since
    ended."""
    results = await asyncio.gather(*(cluster.volumes.list_uploads(vid, incarnation, prefix)
                                     for vid in cluster.placed_ids), return_exceptions=True)
    found: dict[str, dict] = {}
    for rows in results:
        if isinstance(rows, BaseException):
            continue
        for row in rows:
            found[row["upload_id"]] = row
    return sorted(found.values(), key=lambda r: (r["key"], r["upload_id"]))
