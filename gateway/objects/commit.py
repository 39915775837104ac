"""Write path, phase two: commit a manifest on the volumes (DESIGN.md step 5).

Only committed versions are visible. A write that reached the quorum but missed some
fragment indexes records heal-queue entries on every volume it commits to, so the
record of what needs healing survives the loss of any one of them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable

from gateway.errors import quorum_lost
from gateway.objects.cluster import Cluster
from gateway.objects.fanout import answered, first_answers
from gateway.objects.volume_client import VolumeNotFound, VolumeRejected, VolumeUnavailable
from gateway.objects.writer import Staged, abort_staged
from shardgate.manifest import ObjectManifest

log = logging.getLogger("shardgate.gateway.objects.commit")
COMMIT_GRACE_SECONDS = 2.0


def _heal_entries(manifest: ObjectManifest) -> list[dict]:
    entries = []
    for part in manifest.parts:
        for index, holder in enumerate(part.placement):
            if holder is None:
                entries.append({"archive_id": part.archive_id(manifest.incarnation, manifest.key,
                                                              index),
                                "index": index, "reason": f"missed write of part {part.number}"})
    return entries


def _payload(manifest: ObjectManifest, volume_id: str, stage_id: str | None,
             archive: str | None, inline: bool, heal: list[dict],
             as_dict: dict | None = None) -> dict:
    return {
        "incarnation": manifest.incarnation, "key": manifest.key,
        "version_id": manifest.version_id, "deleted": manifest.deleted,
        "manifest": as_dict if as_dict is not None else manifest.to_dict(),
        "summary": manifest.summary(),
        "stage_id": stage_id, "archive_id": archive, "inline": inline,
        "archives": manifest.archives_on(volume_id), "heal": heal,
    }


async def _gather_commits(cluster: Cluster, calls: dict[str, Awaitable]) -> int:
    """Commits that succeeded; a slow volume's commit goes on after the quorum answers."""
    results = await first_answers(calls, cluster.write_quorum, grace=COMMIT_GRACE_SECONDS,
                                  cancel_rest=False)
    for volume_id, result in results.items():
        if isinstance(result, BaseException):
            log.warning("commit on %s failed: %r", volume_id, result)
    return len(answered(results))


async def _commit_or_unstage(cluster: Cluster, volume_id: str, stage_id: str,
                             payload: dict) -> dict:
    """Commit one volume; if that fails (even after the quorum answered and this call went
    on in the background) remove its staged archive rather than leave it behind."""
    try:
        return await cluster.volumes.commit_object(volume_id, payload)
    except Exception:
        with contextlib.suppress(VolumeUnavailable, VolumeRejected, VolumeNotFound):
            await cluster.volumes.abort_stage(volume_id, stage_id)
        raise


async def commit_staged(cluster: Cluster, staged: Staged, manifest: ObjectManifest) -> None:
    """Commit a single-part object whose archives were staged by `stage_body`."""
    part = manifest.parts[0]
    heal = _heal_entries(manifest)
    as_dict = manifest.to_dict()  # once, not once per volume
    calls = {}
    for index, stage_id in staged.stage_ids.items():
        volume_id = staged.placement[index]
        archive = part.archive_id(manifest.incarnation, manifest.key, index)
        calls[volume_id] = _commit_or_unstage(
            cluster, volume_id, stage_id,
            _payload(manifest, volume_id, stage_id, archive, part.inline, heal, as_dict))
    if await _gather_commits(cluster, calls) < cluster.write_quorum:
        await abort_staged(cluster, staged)
        raise quorum_lost("Too few storage volumes committed the write.")


async def commit_manifest(cluster: Cluster, placement: tuple[str, ...],
                          manifest: ObjectManifest) -> None:
    """Commit a manifest whose archives already exist (multipart) or a tombstone."""
    heal = _heal_entries(manifest)
    as_dict = manifest.to_dict()
    calls = {vid: cluster.volumes.commit_object(vid, _payload(manifest, vid, None, None, False,
                                                              heal, as_dict))
             for vid in placement}
    if await _gather_commits(cluster, calls) < cluster.write_quorum:
        raise quorum_lost("Too few storage volumes committed the write.")
