"""Deletes: a key's delete marker (or removal), one version for good, up to 1,000 at once.

A DELETE without a version id writes a marker, so that a volume that was down cannot
bring the key back; its null marker goes in one round trip (one_trip.py), any other
after a read of the key. A DELETE by version id tombstones that version first
(versions.forget).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from gateway.errors import S3Error, quorum_lost
from gateway.objects import one_trip, versions
from gateway.objects.bucket_records import BucketRecord
from gateway.objects.cluster import Cluster
from gateway.objects.commit import commit_manifest
from gateway.objects.conditional import Fence, WriteConditions, fence_for, key_claim
from gateway.objects.fanout import answered, first_answers
from gateway.objects.reader import find_latest
from shardgate.manifest import ObjectManifest
from shardgate.versionid import new_version_id

PARALLEL_DELETES = 32

# What deleting one entry of a DeleteObjects came to: the marker written (a plain DELETE),
# the version removed or None (a DELETE by version id), or the error.
DeleteOutcome = ObjectManifest | None | S3Error


async def delete(cluster: Cluster, bucket: BucketRecord, key: str, owner: str,
                 if_match: tuple[str, ...] | None = None) -> ObjectManifest:
    """DELETE without a version id: a delete marker (a null one unless versioning is
    Enabled; in a never-versioned bucket a plain removal), so a volume that was down
    cannot bring the key back. Returns the marker. With `if_match` (ETags), only if
    the current version has one of them, atomically (conditional.py)."""
    if if_match is not None:
        async with key_claim(cluster, bucket.incarnation, key):
            fence = await fence_for(cluster, bucket.incarnation, key,
                                    WriteConditions(if_match=if_match))
            return await tombstone(cluster, bucket, key, owner, fence)
    marker = new_marker(bucket, key, owner)
    if marker.null_version and one_trip.allowed(cluster, bucket.incarnation, key):
        # A null marker replaces the one a refused trip may leave on a quorum, so
        # one DELETE never shows as two markers.
        try:
            await one_trip.commit_marker(
                cluster, cluster.placement(bucket.incarnation, key), marker)
            return marker
        except one_trip.Refused:
            pass
    # Reading the key first moves our clock past its newest version (layer.put has
    # why), so the tombstone is newer than what it deletes.
    await find_latest(cluster, bucket.incarnation, key)
    return await tombstone(cluster, bucket, key, owner)


async def delete_version(cluster: Cluster, bucket: BucketRecord, key: str,
                         version_id: str) -> ObjectManifest | None:
    """Delete one version for good (None if there was no such version)."""
    target = await versions.find_version(cluster, bucket.incarnation, key, version_id)
    if target is not None:
        await versions.forget(cluster, target)
    return target


async def delete_many(cluster: Cluster, bucket: BucketRecord,
                      keys: list[tuple[str, str | None, str | None]], owner: str
                      ) -> AsyncIterator[tuple[str, str | None, DeleteOutcome]]:
    """Delete up to 1,000 (key, version id or None, ETag condition or None), yielding
    each with its outcome as it finishes."""
    await sync_clock(cluster)
    limiter = asyncio.Semaphore(PARALLEL_DELETES)

    async def one(key: str, version_id: str | None, etag: str | None
                  ) -> tuple[str, str | None, DeleteOutcome]:
        async with limiter:
            try:
                with cluster.placing(bucket.incarnation, key):
                    if etag is not None and version_id is None:
                        return key, None, await delete(cluster, bucket, key, owner, (etag,))
                    if version_id is None:
                        return key, None, await tombstone(cluster, bucket, key, owner)
                    return key, version_id, await delete_version(cluster, bucket, key,
                                                                 version_id)
            except S3Error as exc:
                return key, version_id, exc

    tasks = [asyncio.ensure_future(one(k, v, e)) for k, v, e in keys]
    try:
        for finished in asyncio.as_completed(tasks):
            yield await finished
    finally:
        for task in tasks:
            task.cancel()


def new_marker(bucket: BucketRecord, key: str, owner: str) -> ObjectManifest:
    state = versions.versioning_state(bucket)
    return ObjectManifest(bucket=bucket.name, incarnation=bucket.incarnation, key=key,
                          version_id=new_version_id(), last_modified=time.time(),
                          owner=owner, deleted=True,
                          null_version=state != versions.ENABLED,
                          delete_marker=bool(state))


async def tombstone(cluster: Cluster, bucket: BucketRecord, key: str, owner: str,
                    fence: Fence | None = None) -> ObjectManifest:
    """A marker committed two-phase style on the key's placement (fenced if given)."""
    manifest = new_marker(bucket, key, owner)
    await commit_manifest(cluster, cluster.placement(bucket.incarnation, key), manifest,
                          fence)
    return manifest


async def sync_clock(cluster: Cluster) -> None:
    """Move our clock past every version committed before now: each volume reports
    its newest version id, and asking all but write_quorum - 1 meets every quorum."""
    need = len(cluster.volume_ids) - cluster.write_quorum + 1
    results = await first_answers({vid: cluster.volumes.health(vid)
                                   for vid in cluster.volume_ids}, need)
    if len(answered(results)) < need:
        raise quorum_lost("Too few storage volumes answered.")
