"""Versions in the object layer: the bucket's versioning state, lookups by version id,
and deleting one version by its id (a version tombstone, then the row).

Every version keeps a real time-ordered id, so the read rule orders them; S3's "null"
version is a flag on a row (written while versioning was not Enabled), never an id. A
version deleted by its id is first tombstoned on the write quorum; only once that holds
do the volumes drop its row and retire its archives, and readers never serve a
tombstoned version (docs/durability.md).
"""

from __future__ import annotations

import asyncio
import re

from gateway.errors import S3Error, quorum_lost
from gateway.objects.bucket_records import BucketRecord
from gateway.objects.cluster import Cluster
from gateway.objects.reader import decided
from shardgate.faults import kill_point
from shardgate.manifest import ObjectManifest

ENABLED, SUSPENDED = "Enabled", "Suspended"
_VERSION_ID = re.compile(r"[0-9a-f]{32}")


def versioning_state(bucket: BucketRecord) -> str:
    """"Enabled", "Suspended", or "" for a bucket never versioned."""
    return bucket.setting("versioning", "")


def writes_null_versions(bucket: BucketRecord) -> bool:
    return versioning_state(bucket) != ENABLED


def check_version_id(version_id: str) -> None:
    """InvalidArgument unless `version_id` could name a version ("null" or one of ours)."""
    if version_id != "null" and not _VERSION_ID.fullmatch(version_id):
        raise S3Error("InvalidArgument", "Invalid version id specified",
                      extra={"ArgumentName": "versionId", "ArgumentValue": version_id})


async def find_version(cluster: Cluster, incarnation: str, key: str,
                       version_id: str) -> ObjectManifest | None:
    """The version `version_id` names, a delete marker included, by the read rule over
    the placement's answers (None: no such version; 503: the answers cannot tell)."""
    check_version_id(version_id)
    if version_id == "null":
        return await decided(cluster, incarnation, key,
                             lambda vid: cluster.volumes.nulls(vid, incarnation, key))
    return await decided(cluster, incarnation, key,
                         lambda vid: cluster.volumes.version_rows(vid, incarnation, key,
                                                                  version_id))


async def forget(cluster: Cluster, manifest: ObjectManifest) -> None:
    """Delete one version for good: tombstone it on the write quorum (503 otherwise, the
    tombstones left to the healer, which rolls them forward), then tell the volumes
    that took it to drop the row, queuing a heal for those that missed it. Both rounds
    carry the placement's ring epoch, as every write does (a delete sent to a placement
    a move has left is refused: the move would not carry its tombstones)."""
    with cluster.placing(manifest.incarnation, manifest.key):
        placement = cluster.placement(manifest.incarnation, manifest.key)
        payload = {"incarnation": manifest.incarnation, "key": manifest.key,
                   "version_id": manifest.version_id, "durable": False}
        answers = await asyncio.gather(*(cluster.volumes.forget(vid, payload)
                                         for vid in placement), return_exceptions=True)
        took = [vid for vid, a in zip(placement, answers, strict=True)
                if not isinstance(a, BaseException)]
        if len(took) < cluster.write_quorum:
            raise quorum_lost("Too few storage volumes took the delete.")
        kill_point("gateway.after_tombstones")
        heal = ([{"archive_id": None, "index": None, "reason": "missed a version delete"}]
                if len(took) < len(placement) else [])
        await asyncio.gather(*(cluster.volumes.forget(vid, {**payload, "durable": True,
                                                            "heal": heal}) for vid in took),
                             return_exceptions=True)
