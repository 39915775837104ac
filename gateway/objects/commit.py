"""Write path, phase two: commit a manifest on the volumes, then declare it durable.

Only committed versions are visible, and a committed row is pending until the durable
notice: once the commit reached the write quorum, every volume that committed is told
so, and only then drops the versions it supersedes (docs/durability.md). A write that
missed fragment indexes at staging records heal entries with its commit; one whose
commit missed volumes records them with the durable notice, on every volume that has
the version, so the record of what needs healing survives the loss of any one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable

from gateway.errors import quorum_lost
from gateway.objects.cluster import Cluster
from gateway.objects.conditional import Fence, conflict, roll_back
from gateway.objects.fanout import answered, first_answers
from gateway.objects.volume_errors import VolumeNotFound, VolumeRejected, VolumeUnavailable
from gateway.objects.writer import Staged, abort_staged
from shardgate.faults import kill_point
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


def object_commit_payload(manifest: ObjectManifest, volume_id: str, stage_id: str | None,
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


async def _gather_commits(cluster: Cluster, calls: dict[str, Awaitable]) -> list[str]:
    """Volumes whose commit succeeded; a slow volume's commit goes on after the quorum
    answers (and, if it lands, that volume gets its durable notice at its next heal)."""
    results = await first_answers(calls, cluster.ack_quorum, grace=COMMIT_GRACE_SECONDS,
                                  cancel_rest=False)
    for volume_id, result in results.items():
        if isinstance(result, BaseException):
            log.warning("commit on %s failed: %r", volume_id, result)
    return list(answered(results))


async def _fenced_commits(cluster: Cluster, manifest: ObjectManifest,
                          calls: dict[str, Awaitable]) -> list[str]:
    """Every answer of a fenced commit (so a refusal can be undone everywhere it landed):
    if any volume refused because a newer version is there, the condition was evaluated
    against a state that is gone: roll back where it committed and answer 409."""
    results = dict(zip(calls, await asyncio.gather(*calls.values(), return_exceptions=True),
                       strict=True))
    committed = list(answered(results))
    refused = [vid for vid, r in results.items()
               if isinstance(r, VolumeRejected) and r.conflict]
    if refused:
        log.info("conditional write of %s/%s refused by %s: a newer version is there",
                 manifest.incarnation, manifest.key, refused)
        await roll_back(cluster, manifest, committed)
        raise conflict()
    return committed


def _missed_commit(manifest: ObjectManifest, placement: tuple[str, ...],
                   committed: set[str]) -> list[dict]:
    """Heal entries for the placement's volumes that did not commit the version."""
    entries = []
    for index, volume_id in enumerate(placement):
        if volume_id in committed:
            continue
        archive = None
        if manifest.parts and manifest.parts[0].placement[index] is not None:
            archive = manifest.parts[0].archive_id(manifest.incarnation, manifest.key, index)
        entries.append({"archive_id": archive, "index": index,
                        "reason": f"missed commit on {volume_id}"})
    return entries


async def declare_durable(cluster: Cluster, manifest: ObjectManifest,
                          placement: tuple[str, ...], committed: set[str]) -> None:
    """Tell every volume that committed: the version is on the write quorum, so the
    versions it supersedes may go. Volumes that missed the commit are queued for heal.
    A notice that is lost is made up by the volume itself (a pending row past
    durability.unmarked_seconds is queued for heal, and healing marks it)."""
    heal = _missed_commit(manifest, placement, committed)
    payload = {"incarnation": manifest.incarnation, "key": manifest.key,
               "version_id": manifest.version_id, "heal": heal}
    results = await asyncio.gather(*(cluster.notices.send(vid, payload)
                                     for vid in committed), return_exceptions=True)
    for vid, result in zip(committed, results, strict=True):
        if isinstance(result, BaseException):
            log.warning("durable notice to %s failed: %r", vid, result)
    kill_point("gateway.after_notice")


_NOTICES: set[asyncio.Task] = set()


def notify_durable(cluster: Cluster, manifest: ObjectManifest, placement: tuple[str, ...],
                   committed: set[str]) -> None:
    """Send the durable notice in the background: the answer to the client need not wait
    for it, since readers already count a version on the write quorum as committed."""
    task = asyncio.create_task(declare_durable(cluster, manifest, placement, committed))
    _NOTICES.add(task)
    task.add_done_callback(_NOTICES.discard)


async def _commit_or_unstage(cluster: Cluster, volume_id: str, stage_id: str,
                             payload: dict) -> dict:
    """Commit one volume; if that fails (even after the quorum answered and this call went
    on in the background) remove its staged archive rather than leave it behind."""
    try:
        answer = await cluster.volumes.commit_object(volume_id, payload)
        kill_point("gateway.after_one_commit")
        return answer
    except Exception:
        with contextlib.suppress(VolumeUnavailable, VolumeRejected, VolumeNotFound):
            await cluster.volumes.abort_stage(volume_id, stage_id)
        raise


async def commit_one(cluster: Cluster, volume_id: str, payload: dict) -> dict:
    answer = await cluster.volumes.commit_object(volume_id, payload)
    kill_point("gateway.after_one_commit")
    return answer


async def commit_staged(cluster: Cluster, staged: Staged, manifest: ObjectManifest,
                        fence: Fence | None = None) -> None:
    """Commit a single-part object whose archives were staged by `stage_body`; with a
    fence, a conditional write (gateway/objects/conditional.py)."""
    part = manifest.parts[0]
    heal = _heal_entries(manifest)
    as_dict = manifest.to_dict()  # once, not once per volume
    extra = fence.payload() if fence is not None else {}
    calls = {}
    for index, stage_id in staged.stage_ids.items():
        volume_id = staged.placement[index]
        archive = part.archive_id(manifest.incarnation, manifest.key, index)
        calls[volume_id] = _commit_or_unstage(
            cluster, volume_id, stage_id,
            object_commit_payload(manifest, volume_id, stage_id, archive, part.inline, heal,
                                  as_dict) | extra)
    if fence is not None:
        committed = await _fenced_commits(cluster, manifest, calls)
    else:
        committed = await _gather_commits(cluster, calls)
    if len(committed) < cluster.ack_quorum:
        # Volumes that did commit keep a pending row that no reader can mistake for an
        # acknowledged version; the healer rolls it back (the janitor queues it).
        await abort_staged(cluster, staged)
        raise quorum_lost("Too few storage volumes committed the write.")
    kill_point("gateway.after_commit")
    notify_durable(cluster, manifest, staged.placement, set(committed))


async def commit_manifest(cluster: Cluster, placement: tuple[str, ...],
                          manifest: ObjectManifest, fence: Fence | None = None) -> None:
    """Commit a manifest whose archives already exist (multipart) or a tombstone."""
    heal = _heal_entries(manifest)
    as_dict = manifest.to_dict()
    extra = fence.payload() if fence is not None else {}
    calls = {vid: commit_one(cluster, vid, object_commit_payload(
                 manifest, vid, None, None, False, heal, as_dict) | extra)
             for vid in placement}
    if fence is not None:
        committed = await _fenced_commits(cluster, manifest, calls)
    else:
        committed = await _gather_commits(cluster, calls)
    if len(committed) < cluster.ack_quorum:
        raise quorum_lost("Too few storage volumes committed the write.")
    kill_point("gateway.after_commit")
    notify_durable(cluster, manifest, placement, set(committed))
