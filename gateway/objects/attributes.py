"""In-place attributes of a version (tags): write them on the quorum, read the newest.

A version's manifest is immutable; what S3 lets a client change afterwards is kept beside
it on each volume as an attribute with a stamp (a time-ordered id, newer than any version
or stamp the gateway has seen). Readers take, per attribute, the value with the newest
stamp among the volumes that answered: the read rule asks enough volumes to meet every
write quorum, so an acknowledged change is always among them. Volumes that missed a
change get it from the healer, which spreads the newest stamp (docs/durability.md).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from gateway.errors import quorum_lost
from gateway.objects.cluster import Cluster
from shardgate.manifest import ObjectManifest
from shardgate.versionid import new_version_id

TAGS = "tags"
ACL = "acl"


def newest(rows: list[dict]) -> dict[str, dict[str, Any]]:
    """Per attribute name, the {"stamp", "value"} with the newest stamp among `rows`
    (the same version as several volumes hold it)."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        for name, held in (row.get("attributes") or {}).items():
            if name not in out or held["stamp"] > out[name]["stamp"]:
                out[name] = held
    return out


def apply(manifest: ObjectManifest, attributes: dict[str, dict[str, Any]]) -> ObjectManifest:
    """The manifest as a reader sees it: with its newest in-place attributes."""
    if TAGS in attributes:
        manifest = replace(manifest, tags=dict(attributes[TAGS]["value"]))
    if ACL in attributes:
        manifest = replace(manifest, acl=[dict(g) for g in attributes[ACL]["value"]])
    return manifest


async def write(cluster: Cluster, manifest: ObjectManifest, name: str, value: Any) -> None:
    """Set an attribute of one version on its placement; 503 unless the write quorum
    holds it. Volumes that missed it are queued for heal on those that took it. The
    change carries its placement's ring epoch: one sent to a placement a move has left
    is refused, not kept where the move no longer looks (docs/cluster-map.md)."""
    payload = {"incarnation": manifest.incarnation, "key": manifest.key,
               "version_id": manifest.version_id, "name": name, "stamp": new_version_id(),
               "value": value}
    with cluster.placing(manifest.incarnation, manifest.key):
        placement = cluster.placement(manifest.incarnation, manifest.key)
        answers = await asyncio.gather(*(cluster.volumes.set_attribute(vid, payload)
                                         for vid in placement), return_exceptions=True)
    took = [vid for vid, a in zip(placement, answers, strict=True) if a is True]
    if len(took) < cluster.write_quorum:
        raise quorum_lost("Too few storage volumes took the change.")
    if len(took) < len(placement):
        entry = {"incarnation": manifest.incarnation, "key": manifest.key,
                 "version_id": manifest.version_id, "archive_id": None, "index": None,
                 "reason": f"missed a change of {name}"}
        await asyncio.gather(*(cluster.volumes.queue_heal(vid, [entry]) for vid in took),
                             return_exceptions=True)
