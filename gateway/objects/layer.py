"""The object layer: the one interface the S3 protocol layer uses to store and read objects.

Handlers parse, authorise and render; everything that touches volumes (placement,
quorums, stage-then-commit, the read rule, tombstones, healing hooks) happens behind the
methods here, which take and return plain dataclasses. Errors are S3Error values.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from erasure import archive_seed
from gateway.errors import S3Error
from gateway.objects import attributes, deletes, one_trip, small_write, uploads, versions
from gateway.objects.bucket_import import volume_held_records
from gateway.objects.bucket_records import BucketRecord, BucketRecords
from gateway.objects.cluster import Cluster
from gateway.objects.commit import commit_staged
from gateway.objects.conditional import (
    WriteConditions,
    busy_is_conflict,
    evaluate,
    fence_for,
    key_claim,
)
from gateway.objects.copying import ReaderPayload, copy_expectations
from gateway.objects.healer import Healer
from gateway.objects.ingest import Expectations, Payload, Verified, stage_verified
from gateway.objects.list_merge import ListPage, merge_list
from gateway.objects.read_ahead import ReadAhead
from gateway.objects.reader import ObjectReader, find_current, find_latest
from gateway.objects.version_merge import VersionPage, merge_versions
from gateway.objects.writer import Staged, abort_staged
from shardgate.config import ClusterConfig
from shardgate.faults import kill_point
from shardgate.manifest import ErasureParams, ObjectManifest, PartManifest, archive_id
from shardgate.mapstore import MapUnavailable
from shardgate.mapview import MapView
from shardgate.versionid import new_version_id


@dataclass(frozen=True)
class ObjectAttributes:
    """What a write stores besides the bytes."""

    owner: str
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    acl: list[dict[str, str]] | None = None  # None: the default, owner-only


def _live(bucket: BucketRecord, key: str, current: ObjectManifest | None) -> ObjectManifest:
    """`current` unless absent or a delete marker: NoSuchKey (a marker's headers say so
    in a bucket that was ever versioned)."""
    if current is not None and not current.deleted:
        return current
    headers = {}
    if current is not None and versions.versioning_state(bucket):
        headers = {"x-amz-delete-marker": "true",
                   "x-amz-version-id": current.public_version_id}
    elif current is not None:  # removed from a never-versioned bucket: no marker there
        headers = {"x-amz-delete-marker": "false"}
    raise S3Error("NoSuchKey", extra={"Key": key}, headers=headers)


@dataclass(frozen=True)
class PutResult:
    manifest: ObjectManifest
    verified: Verified


class ObjectLayer:
    def __init__(self, config: ClusterConfig, cluster: Cluster | None = None) -> None:
        self.config = config
        self.cluster = cluster or Cluster.build(config)
        self.buckets = BucketRecords(config.map, config.gateway.bucket_cache_seconds,
                                     importer=lambda: volume_held_records(self.cluster))
        self.healer = Healer(self.cluster, config.durability)
        self._healing: asyncio.Task | None = None
        self.map_view: MapView | None = None
        self._map_refresh: asyncio.Task | None = None

    async def start(self, heal: bool = True) -> None:
        """Follow the cluster map, open the volume client and the bucket records, start
        healing in the background."""
        gw = self.config.gateway
        self.map_view = MapView(self.config, "gateway",
                                f"{socket.gethostname()}-{gw.port}-{os.getpid()}")
        self.map_view.listeners.append(self.cluster.adopt)
        await self.map_view.start()
        self.cluster.adopt(self.map_view.current)
        self.cluster.volumes.on_stale_epoch = self._refresh_map
        await self.cluster.volumes.start()
        await self.buckets.start(self.map_view.store)
        if heal:
            await self._know_members()
            self._healing = asyncio.create_task(self.healer.run_forever())

    def _refresh_map(self) -> None:
        """A volume refused our epoch: re-read the map now (once at a time), so the next
        write is placed by the newest ring; the refused one fails retryably."""
        if self.map_view is None or (self._map_refresh and not self._map_refresh.done()):
            return

        async def refresh() -> None:
            with contextlib.suppress(MapUnavailable):
                await self.map_view.refresh()
        self._map_refresh = asyncio.create_task(refresh())

    async def _know_members(self, wait: float = 10.0) -> None:
        """Before serving: learn which volumes are rebuilding (and clear the marks of a
        new cluster's new volumes), waiting a little for volumes still starting."""
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            try:
                if await self.healer.members.check() == len(self.cluster.volume_ids):
                    return
            except Exception:  # noqa: BLE001 - volumes still starting; the healer retries
                pass
            if asyncio.get_running_loop().time() > deadline:
                return
            await asyncio.sleep(0.2)

    async def close(self) -> None:
        await self.buckets.stop()
        if self._healing is not None:
            self._healing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._healing
        await self.cluster.volumes.close()
        if self.map_view is not None:
            await self.map_view.stop()

    # buckets

    async def bucket(self, name: str, fresh: bool = False) -> BucketRecord:
        """The live bucket (NoSuchBucket otherwise); `fresh` reads it past the cache.
        Who may use it is gateway/access.py's concern."""
        return await self.buckets.require(name, fresh)

    async def list_buckets(self, user_id: str) -> list[BucketRecord]:
        return await self.buckets.list_for(user_id)

    async def create_bucket(self, name: str, user_id: str) -> BucketRecord:
        return await self.buckets.create(name, user_id)

    async def delete_bucket(self, bucket: BucketRecord) -> None:
        """BucketNotEmpty while any version or delete marker is left, as in S3."""
        page = await merge_versions(self.cluster, bucket.incarnation, "", "", "", "", 1)
        if page.entries:
            raise S3Error("BucketNotEmpty", extra={"BucketName": bucket.name})
        await self.buckets.delete(bucket)

    # reads

    async def head(self, bucket: BucketRecord, key: str,
                   inline: dict[int, bytes] | None = None,
                   ahead: ReadAhead | None = None) -> ObjectManifest:
        """The key's current version by the read rule (NoSuchKey if absent or deleted;
        when its newest version is a delete marker, with that marker's headers).
        `inline` collects a small object's fragments on the way, `ahead` opens a ranged
        GET's first reads along (reader.find_current)."""
        return _live(bucket, key, await find_current(self.cluster, bucket.incarnation, key,
                                                     inline, ahead))

    def read_ahead(self, bucket: BucketRecord, key: str, range_header: str
                   ) -> ReadAhead | None:
        """The reads a ranged GET of the current version can open with its `latest`
        requests, if this process has read the key before (read_ahead.py)."""
        return ReadAhead.plan(self.cluster, bucket.incarnation, key, range_header)

    async def current(self, bucket: BucketRecord, key: str) -> ObjectManifest | None:
        """The key's newest version, a delete marker included (None: no version)."""
        return await find_current(self.cluster, bucket.incarnation, key)

    async def version(self, bucket: BucketRecord, key: str, version_id: str | None,
                      inline: dict[int, bytes] | None = None,
                      ahead: ReadAhead | None = None) -> ObjectManifest:
        """The version `version_id` names (None: the current one, as `head`), a delete
        marker included (NoSuchVersion, NoSuchKey, InvalidArgument for a malformed id)."""
        if version_id is None:
            return await self.head(bucket, key, inline, ahead)
        found = await versions.find_version(self.cluster, bucket.incarnation, key,
                                            version_id)
        if found is None:
            raise S3Error("NoSuchVersion", extra={"Key": key, "VersionId": version_id})
        return found

    async def set_tags(self, manifest: ObjectManifest, tags: dict[str, str]) -> None:
        """Replace a version's tags in place (a stamped change on the write quorum)."""
        await attributes.write(self.cluster, manifest, attributes.TAGS, tags)

    async def set_acl(self, manifest: ObjectManifest, grants: list[dict[str, str]]) -> None:
        """Replace a version's ACL in place (a stamped change on the write quorum)."""
        await attributes.write(self.cluster, manifest, attributes.ACL, grants)

    async def bucket_tags(self, bucket: BucketRecord) -> dict[str, str]:
        fresh = await self.buckets.get(bucket.name, fresh=True)
        return dict((fresh or bucket).setting("tags", {}))

    async def set_bucket_tags(self, bucket: BucketRecord, tags: dict[str, str]) -> None:
        await self.buckets.set_setting(bucket, "tags", tags)

    async def set_versioning(self, bucket: BucketRecord, state: str) -> None:
        """Enabled or Suspended (a bucket never goes back to unversioned)."""
        await self.buckets.set_setting(bucket, "versioning", state)

    async def open(self, manifest: ObjectManifest, start: int, end: int,
                   inline: dict[int, bytes] | None = None,
                   ahead: ReadAhead | None = None) -> ObjectReader:
        """A reader of bytes [start, end]; the first segment is fetched now, so a failure
        is an error before any header goes out. `inline`: fragments already in hand;
        `ahead`: reads already opened."""
        reader = ObjectReader(self.cluster, manifest, start, end, inline, ahead)
        try:
            await reader.prepare()
        except BaseException:
            reader.close()
            raise
        return reader

    async def list(self, bucket: BucketRecord, prefix: str, delimiter: str, after: str,
                   max_keys: int) -> ListPage:
        return await merge_list(self.cluster, bucket.incarnation, prefix, delimiter, after,
                                max_keys)

    async def list_versions(self, bucket: BucketRecord, prefix: str, delimiter: str,
                            key_marker: str, version_marker: str, max_keys: int
                            ) -> VersionPage:
        return await merge_versions(self.cluster, bucket.incarnation, prefix, delimiter,
                                    key_marker, version_marker, max_keys)

    # writes

    async def put(self, bucket: BucketRecord, key: str, body: Payload, expect: Expectations,
                  attrs: ObjectAttributes, conditions: WriteConditions) -> PutResult:
        """Stage, verify, re-check the conditions, then commit on the write quorum."""
        with self.cluster.placing(bucket.incarnation, key):
            return await self._put(bucket, key, body, expect, attrs, conditions)

    async def _put(self, bucket: BucketRecord, key: str, body: Payload,
                   expect: Expectations, attrs: ObjectAttributes,
                   conditions: WriteConditions) -> PutResult:
        cluster = self.cluster
        placement = cluster.placement(bucket.incarnation, key)
        await self.check_conditions(bucket, key, conditions)
        # The archives are named (and their CRCs seeded) before any byte is encoded; the
        # version id is chosen only after staging (below).
        tag = uuid.uuid4().hex
        seeds = [archive_seed(archive_id(bucket.incarnation, key, tag, i))
                 for i in range(cluster.width)]
        kept: ObjectManifest | None = None  # a refused one-trip write left on a quorum
        if not conditions.any and small_write.fits(cluster, expect,
                                                    bucket.incarnation, key):
            small = await small_write.read_small(cluster, body, expect, seeds)
            digests = small.digests
            verified = Verified(Staged(placement, {}, digests.size, digests),
                                digests.algorithm, small.checksum, expect.algorithm is not None)
            manifest = self._put_manifest(bucket, key, verified, tag, attrs, placement)
            try:
                await small_write.commit_small(cluster, manifest, small)
                return PutResult(manifest, verified)
            except one_trip.Refused as refused:  # stage it, two-phase
                kept = manifest if refused.kept and not manifest.null_version else None
            body = small_write.BytesPayload(small)
            tag = uuid.uuid4().hex
            seeds = [archive_seed(archive_id(bucket.incarnation, key, tag, i))
                     for i in range(cluster.width)]
        verified = await stage_verified(cluster, placement, body, expect, seeds)
        kill_point("gateway.after_stage")
        staged = verified.staged
        try:
            if not conditions.any:
                manifest = self._put_manifest(bucket, key, verified, tag, attrs)
                await commit_staged(cluster, staged, manifest)
                if kept is not None:
                    await small_write.forget_kept(cluster, kept)
                return PutResult(manifest, verified)
            async with key_claim(cluster, bucket.incarnation, key):
                fence = await fence_for(cluster, bucket.incarnation, key, conditions)
                kill_point("gateway.after_claim")
                manifest = self._put_manifest(bucket, key, verified, tag, attrs)
                await commit_staged(cluster, staged, manifest, fence)
                return PutResult(manifest, verified)
        except S3Error as exc:
            if exc.code in ("PreconditionFailed", "NoSuchKey", "ConditionalRequestConflict"):
                await abort_staged(cluster, staged)
            raise

    def _put_manifest(self, bucket: BucketRecord, key: str, verified: Verified, tag: str,
                      attrs: ObjectAttributes,
                      holders: tuple[str | None, ...] | None = None) -> ObjectManifest:
        # The version id is chosen only now: the stage answers carried each volume's
        # clock, so it is newer than any version a quorum of the placement has committed.
        cluster, staged = self.cluster, verified.staged
        ec = cluster.config.erasure
        inline = staged.size < cluster.config.gateway.inline_threshold
        etag = staged.digests.md5_hex
        checksums = {verified.algorithm: verified.checksum}
        part = PartManifest(1, staged.size, etag, tag, holders or staged.staged_placement(),
                            inline, checksums, seeded=True)
        return ObjectManifest(
            bucket=bucket.name, incarnation=bucket.incarnation, key=key,
            version_id=new_version_id(), last_modified=time.time(), owner=attrs.owner,
            size=staged.size, etag=etag, content_type=attrs.content_type,
            headers=attrs.headers, metadata=attrs.metadata, checksums=checksums,
            checksum_type="FULL_OBJECT", tags=attrs.tags, acl=attrs.acl,
            null_version=versions.writes_null_versions(bucket),
            erasure=ErasureParams(ec.k, ec.m, ec.ec_type, ec.segment_size), parts=(part,))

    async def copy(self, source: ObjectManifest, bucket: BucketRecord, key: str,
                   attrs: ObjectAttributes, conditions: WriteConditions,
                   algorithm: str | None, max_size: int) -> PutResult:
        """A new version of `key` holding `source`'s bytes, streamed segment by segment
        (never the whole object in memory) and written like any PUT."""
        reader = await self.open(source, 0, source.size - 1)
        try:
            return await self.put(bucket, key, ReaderPayload(reader),
                                  copy_expectations(source, 0, source.size - 1, max_size,
                                                    algorithm), attrs, conditions)
        finally:
            reader.close()

    async def check_conditions(self, bucket: BucketRecord, key: str,
                               conditions: WriteConditions) -> None:
        """An early check, before a body is read: a write that must fail fails at once.
        The check that counts is made again under the key's claim (conditional.py)."""
        if conditions.any:
            async with busy_is_conflict():
                current = await find_latest(self.cluster, bucket.incarnation, key)
            evaluate(conditions, current, key)

    async def delete(self, bucket: BucketRecord, key: str, owner: str,
                     if_match: tuple[str, ...] | None = None) -> ObjectManifest:
        with self.cluster.placing(bucket.incarnation, key):
            return await deletes.delete(self.cluster, bucket, key, owner, if_match)

    async def delete_version(self, bucket: BucketRecord, key: str,
                             version_id: str) -> ObjectManifest | None:
        with self.cluster.placing(bucket.incarnation, key):
            return await deletes.delete_version(self.cluster, bucket, key, version_id)

    def delete_many(self, bucket: BucketRecord,
                    keys: list[tuple[str, str | None, str | None]], owner: str
                    ) -> AsyncIterator[tuple[str, str | None, deletes.DeleteOutcome]]:
        return deletes.delete_many(self.cluster, bucket, keys, owner)

    # multipart uploads

    async def create_upload(self, bucket: BucketRecord, key: str, attrs: ObjectAttributes,
                            checksum_algorithm: str | None, checksum_type: str | None) -> str:
        with self.cluster.placing(bucket.incarnation, key):
            return await uploads.create(self.cluster, bucket, key, attrs.owner, {
                "content_type": attrs.content_type, "headers": attrs.headers,
                "metadata": attrs.metadata, "tags": attrs.tags, "acl": attrs.acl,
                "checksum_algorithm": checksum_algorithm,
                "checksum_type": checksum_type})

    async def upload(self, bucket: BucketRecord, key: str, upload_id: str,
                     user_id: str) -> uploads.Upload:
        return await uploads.find(self.cluster, bucket.incarnation, key, upload_id, user_id)

    async def upload_part(self, bucket: BucketRecord, upload: uploads.Upload, number: int,
                          body: Payload, expect: Expectations
                          ) -> tuple[PartManifest, Verified]:
        return await uploads.upload_part(self.cluster, bucket, upload, number, body, expect)

    async def copy_part(self, source: ObjectManifest, start: int, end: int,
                        bucket: BucketRecord, upload: uploads.Upload, number: int,
                        max_size: int) -> tuple[PartManifest, Verified]:
        """Part `number` of `upload` holding bytes [start, end] of `source`, streamed."""
        reader = await self.open(source, start, end)
        algorithm = upload.meta.get("checksum_algorithm")
        try:
            return await self.upload_part(
                bucket, upload, number, ReaderPayload(reader),
                copy_expectations(source, start, end, max_size, algorithm))
        finally:
            reader.close()

    async def list_parts(self, upload: uploads.Upload) -> dict[int, PartManifest]:
        return await uploads.newest_parts(self.cluster, upload)

    async def complete_upload(self, bucket: BucketRecord, key: str, upload_id: str,
                              user_id: str, requested: list[uploads.RequestedPart],
                              checks: uploads.CompleteChecks | None = None
                              ) -> ObjectManifest:
        with self.cluster.placing(bucket.incarnation, key):
            return await uploads.complete(self.cluster, bucket, key, upload_id, user_id,
                                          requested, checks)

    async def abort_upload(self, bucket: BucketRecord, key: str, upload_id: str,
                           user_id: str) -> None:
        with self.cluster.placing(bucket.incarnation, key):
            await uploads.abort(self.cluster, bucket, key, upload_id, user_id)

    async def list_uploads(self, bucket: BucketRecord, prefix: str) -> list[dict]:
        return await uploads.list_all(self.cluster, bucket.incarnation, prefix)
