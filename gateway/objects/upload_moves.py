"""Moving an open multipart upload to its key's new placement, during a rebalance.

An upload's record and part rows live on the volumes of its key's placement, and each
part's fragments where the ring put them when the part was written (a part names its
holders). When a volume leaves the key's placement while the upload is open, the
rebalancer moves the upload as it moves versions: the record to the volumes that joined
the placement, then every fragment whose volume left to the volume that takes its index
(copied and verified segment by segment; rebuilt from the other fragments when the
source is down or corrupt), each committed there as a part row naming its new holder;
an index no volume held (its stage failed) is rebuilt after those, from them too.
Only then does a leaving volume drop its copy of the upload and free its archives.

While it works the rebalancer holds the upload's claim (op "move") on a claim quorum of
the new placement, so a Complete or an Abort cannot act half-way through: it waits a
little, or answers a retryable 503. A Complete reads the parts' holders again once it
holds its own claims (uploads.py), so it names the moved fragments where they now are.
An upload that has ended on the new placement meanwhile (a Complete or an Abort through
a gateway on the new epoch) is dropped from the volumes still holding it, after the
object it became is healed onto the placement: no volume keeps listing an upload that
has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace

from gateway.errors import S3Error
from gateway.objects.cluster import Cluster
from gateway.objects.heal_refs import HealDeferred, VersionRef
from gateway.objects.healer import Healer, copy_passes, copyable_moves
from gateway.objects.multipart_end import UploadGone, claim_quorum, release
from gateway.objects.part_rows import held_by, read_part_rows
from gateway.objects.reader import find_latest
from gateway.objects.volume_errors import VolumeNotFound
from placement import stable_placement
from shardgate.faults import kill_point
from shardgate.manifest import PartManifest
from shardgate.versionid import new_version_id

log = logging.getLogger("shardgate.rebalancer")


async def _parts_held(cluster: Cluster, upload_id: str, volumes: list[str]
                      ) -> tuple[dict[str, PartManifest], dict[str, set[str]]]:
    """The newest version of each part the volumes list (by archive tag: a part
    uploaded again replaced the older one, which a Complete would refuse), naming the
    holders of its fragments now; and which volumes list each version."""
    answered, copies = await read_part_rows(cluster, upload_id, volumes)
    newest: dict[int, str] = {}
    for tag, held in copies.items():
        number = next(iter(held.values())).number
        newest[number] = max(tag, newest.get(number, tag))
    parts = {tag: replace(next(iter(copies[tag].values())),
                          placement=held_by(copies[tag], answered))
             for tag in newest.values()}
    return parts, {tag: set(held) for tag, held in copies.items()}


async def move_upload(cluster: Cluster, healer: Healer, record: dict,
                      alive: set[str]) -> bool:
    """Move one open upload onto its key's placement; False if it has ended there."""
    incarnation, key, upload_id = record["incarnation"], record["key"], record["upload_id"]
    placement = cluster.placement(incarnation, key)
    before = cluster.previous_placement(incarnation, key) or ()
    leaving = [vid for vid in before if vid not in placement and vid in alive]
    joined = [vid for vid in placement if vid not in before and vid in alive]
    token = new_version_id()
    # The record goes to the volumes that joined before the claim: an upload whose
    # create missed a volume the placement keeps would otherwise lack a claim quorum.
    # Were it ended already, the claim finds it gone and these copies are dropped.
    for vid in joined:
        await cluster.volumes.put_upload(vid, record)
    try:
        claims = await claim_quorum(cluster, placement, upload_id, token, "move")
    except UploadGone:
        await _drop_ended(cluster, healer, record, [*joined, *leaving], token)
        return False
    except S3Error as exc:  # held by a Complete, an Abort, or a dead mover's claim
        raise HealDeferred(f"upload {upload_id}: {exc.message}") from exc
    try:
        for vid in claims.missing:  # a volume the create missed: its parts go there too
            await cluster.volumes.put_upload(vid, record)
        await _move_parts(cluster, healer, record, placement, before, alive, token)
        for vid in leaving:
            with contextlib.suppress(VolumeNotFound):  # its create or a retry missed it
                await cluster.volumes.abort_upload(vid, upload_id, token)
    finally:
        await release(cluster, claims.held, upload_id, token)
    return True


async def _drop_ended(cluster: Cluster, healer: Healer, record: dict, stale: list[str],
                      token: str) -> None:
    """The upload ended on its placement (completed or aborted) while a volume leaving
    it still held it open: the object it became is healed onto the placement first (its
    fragments on the leaving volume copied while they are there), then the stale copies
    are dropped, so no volume lists an upload that has ended."""
    incarnation, key, upload_id = record["incarnation"], record["key"], record["upload_id"]
    latest = await find_latest(cluster, incarnation, key)
    if latest is not None and latest.upload_id == upload_id:
        await healer.heal(VersionRef(incarnation, key, latest.version_id), copy_moved=True)
    for vid in stale:
        with contextlib.suppress(VolumeNotFound):
            await cluster.volumes.abort_upload(vid, upload_id, token)
    log.info("upload %s of %s/%s had ended on its placement: the copies on %s dropped",
             upload_id, incarnation, key, stale)


async def _move_parts(cluster: Cluster, healer: Healer, record: dict,
                      placement: tuple[str, ...], before: tuple[str, ...], alive: set[str],
                      token: str) -> None:
    """Each part's fragments off the placement go to the volume taking their index."""
    incarnation, key, upload_id = record["incarnation"], record["key"], record["upload_id"]
    asked = [vid for vid in dict.fromkeys([*placement, *before]) if vid in alive]
    parts, listed = await _parts_held(cluster, upload_id, asked)
    down = [vid for vid in dict.fromkeys([*placement, *before]) if vid not in alive]
    for tag, part in sorted(parts.items()):
        target = stable_placement(part.placement, cluster.ring, f"{incarnation}/{key}")
        moved = {i for i, (old, new) in enumerate(zip(part.placement, target, strict=True))
                 if old != new and new not in listed[tag]}
        if not moved:
            continue
        copies = {i: old for i, old in copyable_moves(part.placement, target, down).items()
                  if i in moved}
        for copy_from in copy_passes(copies, part.placement):
            part = await _move_part(cluster, healer, record, part, target, down, copy_from)
            kill_point("rebalance.after_part_moved")


async def _move_part(cluster: Cluster, healer: Healer, record: dict, part: PartManifest,
                     target: tuple[str, ...], down: list[str], copy_from: dict[int, str]
                     ) -> PartManifest:
    """One pass of a part's move: the indexes of `copy_from` copied from the volumes
    named, or (empty) every missing or bad index on `target` rebuilt from the good ones;
    each committed on its new holder as a part row naming it. The part as it is now."""
    incarnation, key, upload_id = record["incarnation"], record["key"], record["upload_id"]
    staged = await healer.stage_fragments(
        cluster.codec, part, incarnation, key, target, down, copy_from,
        f"upload {upload_id} of {incarnation}/{key}", multipart=True)
    holders = tuple(target[i] if i in staged else old
                    for i, old in enumerate(part.placement))
    manifest = {**part.__dict__, "placement": list(holders)}
    await asyncio.gather(*(cluster.volumes.commit_part(target[i], {
        "upload_id": upload_id, "part_number": part.number, "stage_id": stage_id,
        "archive_id": part.archive_id(incarnation, key, i), "manifest": manifest})
        for i, stage_id in staged.items()))
    if staged:
        log.info("upload %s of %s/%s part %d: fragments %s moved to %s", upload_id,
                 incarnation, key, part.number, sorted(staged),
                 [target[i] for i in sorted(staged)])
    return replace(part, placement=holders)
