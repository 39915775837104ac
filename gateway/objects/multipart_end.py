"""Ending a multipart upload exactly once: claim it on a write quorum, then act.

Complete and Abort of one upload can race (two clients, or a client retrying on another
gateway). Each first claims the upload on the placement's volumes under a token of its
own; a volume grants one live claim at a time and lets only its holder complete or
abort there (docs/volume-api.md). An op acts only once it holds claims on a write quorum
that is also a majority of the placement, so of two racing ops at most one acts; the
other lets go of what it claimed. Nothing is changed before a quorum is held, so a race
that leaves neither with a quorum costs a retry, never the object.

Acting is one call per volume: a Complete is a compare-and-set that commits the object
row and frees the archives of parts it does not use; an Abort frees everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, field

from gateway.errors import quorum_lost
from gateway.objects import conditional
from gateway.objects.cluster import Cluster
from gateway.objects.conditional import Fence
from gateway.objects.volume_errors import VolumeNotFound, VolumeRejected, VolumeUnavailable
from shardgate.manifest import ObjectManifest

log = logging.getLogger("shardgate.gateway.multipart")

ROUNDS = 4
BACKOFF = 0.05  # seconds, doubled every round and jittered, so racing ops fall apart


class UploadGone(Exception):
    """So many volumes lack the upload that no op can claim a quorum: it has ended."""


@dataclass
class Claims:
    """How the placement's volumes answered one round of claims."""

    held: list[str] = field(default_factory=list)
    contended: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    down: list[str] = field(default_factory=list)


async def _claim_round(cluster: Cluster, volumes: list[str], upload_id: str, token: str,
                       op: str) -> Claims:
    results = await asyncio.gather(*(cluster.volumes.claim_upload(vid, upload_id, token, op)
                                     for vid in volumes), return_exceptions=True)
    claims = Claims()
    for vid, result in zip(volumes, results, strict=True):
        if not isinstance(result, BaseException):
            claims.held.append(vid)
        elif isinstance(result, VolumeNotFound):
            claims.missing.append(vid)
        elif isinstance(result, VolumeRejected) and result.conflict:
            claims.contended.append(vid)
        else:
            claims.down.append(vid)
    return claims


async def release(cluster: Cluster, volumes: list[str], upload_id: str, token: str) -> None:
    """Let go of claims (best effort: an unreleased claim expires on its own)."""
    async def one(vid: str) -> None:
        with contextlib.suppress(VolumeUnavailable, VolumeRejected, VolumeNotFound):
            await cluster.volumes.release_claim(vid, upload_id, token)

    await asyncio.gather(*(one(vid) for vid in volumes))


def claim_quorum_size(cluster: Cluster) -> int:
    """The write quorum, raised to a majority of the placement where it is less (m > k + 1),
    since only a majority keeps two racing ops from both holding one."""
    return max(cluster.write_quorum, cluster.width // 2 + 1)


async def claim_quorum(cluster: Cluster, placement: tuple[str, ...], upload_id: str,
                       token: str, op: str) -> Claims:
    """Claim the upload on a write quorum (and majority) of its placement, or raise.

    UploadGone when more than width - that many volumes lack it (completed or aborted: no
    op can ever hold a quorum again); 503 when volumes are down, or when another op
    still holds part of the placement after a few jittered rounds.
    """
    needed = claim_quorum_size(cluster)
    for attempt in range(ROUNDS):
        claims = await _claim_round(cluster, list(placement), upload_id, token, op)
        if len(claims.held) >= needed:
            return claims
        await release(cluster, claims.held, upload_id, token)
        if len(claims.missing) > cluster.width - needed:
            raise UploadGone(upload_id)
        if not claims.contended:
            break
        await asyncio.sleep(BACKOFF * (2 ** attempt) * random.uniform(0.5, 1.5))
    raise quorum_lost("Another request is completing or aborting this upload, or too few "
                      "storage volumes answered.")


async def claim_stragglers(cluster: Cluster, contended: list[str], upload_id: str,
                           token: str, op: str) -> list[str]:
    """After winning, claim the volumes a losing op held once it lets go of them."""
    won: list[str] = []
    for attempt in range(ROUNDS):
        if not contended:
            break
        await asyncio.sleep(BACKOFF * (2 ** attempt))
        claims = await _claim_round(cluster, contended, upload_id, token, op)
        won += claims.held
        contended = claims.contended
    if contended:
        log.warning("upload %s: %s still held by another op; left for healing", upload_id,
                    contended)
    return won


def commit_payload(manifest: ObjectManifest, volume_id: str, heal: list[dict]) -> dict:
    """The /objects/commit body for one volume (also the body of a complete)."""
    return {
        "incarnation": manifest.incarnation, "key": manifest.key,
        "version_id": manifest.version_id, "deleted": False,
        "manifest": manifest.to_dict(), "summary": manifest.summary(),
        "stage_id": None, "archive_id": None, "inline": False,
        "archives": manifest.archives_on(volume_id), "heal": heal,
    }


def missed_writes(manifest: ObjectManifest, placed: tuple[str, ...]) -> list[dict]:
    """Heal entries for fragment indexes no volume took when their part was written, and
    for those on a volume that has left the key's placement since (a part uploaded
    before a ring change: the healer moves it to the new placement)."""
    return [{"archive_id": part.archive_id(manifest.incarnation, manifest.key, index),
             "index": index, "reason": f"missed write of part {part.number}"
             if holder is None else f"part {part.number} on {holder}, out of the placement"}
            for part in manifest.parts
            for index, holder in enumerate(part.placement)
            if holder is None or holder not in placed]


async def complete_on(cluster: Cluster, volumes: list[str], manifest: ObjectManifest,
                      token: str, fence: Fence | None = None) -> list[str]:
    """Compare-and-set the object row on claimed volumes; returns those that did. With
    a fence (a conditional Complete) a refusal anywhere rolls back the rows it committed
    and answers 409 (conditional.py)."""
    heal = missed_writes(manifest, cluster.placement(manifest.incarnation, manifest.key))
    extra = fence.payload() if fence is not None else {}
    results = await asyncio.gather(*(
        cluster.volumes.complete_upload(vid, manifest.upload_id,
                        {**commit_payload(manifest, vid, heal), "token": token, **extra})
        for vid in volumes), return_exceptions=True)
    if any(isinstance(r, VolumeRejected) and r.conflict for r in results):
        done = [vid for vid, r in zip(volumes, results, strict=True)
                if not isinstance(r, BaseException)]
        await conditional.roll_back(cluster, manifest, done)
        await release(cluster, volumes, manifest.upload_id, token)
        raise conditional.conflict()
    failed = []
    for vid, result in zip(volumes, results, strict=True):
        if isinstance(result, BaseException):
            log.warning("complete of %s on %s failed: %r", manifest.upload_id, vid, result)
            failed.append(vid)
        elif result.get("missing"):
            log.warning("complete of %s on %s: archives missing there, queued for healing: "
                        "%s", manifest.upload_id, vid, result["missing"])
    await release(cluster, failed, manifest.upload_id, token)
    return [vid for vid in volumes if vid not in failed]


async def commit_where_missing(cluster: Cluster, volumes: list[str],
                               manifest: ObjectManifest) -> list[str]:
    """Volumes that never had the upload still get the object row (so they supersede
    the key's older versions), with their fragments queued for healing."""
    async def one(vid: str) -> str | None:
        heal = missed_writes(manifest, cluster.placement(manifest.incarnation,
                                                         manifest.key)) + [
            {"archive_id": archive, "index": None, "reason": "upload not on this volume"}
            for archive in manifest.archives_on(vid)]
        with contextlib.suppress(VolumeUnavailable, VolumeRejected, VolumeNotFound):
            await cluster.volumes.commit_object(vid, commit_payload(manifest, vid, heal))
            return vid
        return None

    return [vid for vid in await asyncio.gather(*(one(vid) for vid in volumes)) if vid]


async def abort_on(cluster: Cluster, volumes: list[str], upload_id: str,
                   token: str) -> int:
    """Delete the upload on claimed volumes, freeing its archives; returns how many did."""
    results = await asyncio.gather(*(cluster.volumes.abort_upload(vid, upload_id, token)
                                     for vid in volumes), return_exceptions=True)
    failed = [vid for vid, r in zip(volumes, results, strict=True)
              if isinstance(r, BaseException)]
    await release(cluster, failed, upload_id, token)
    return len(volumes) - len(failed)


async def finish_ended(cluster: Cluster, placement: tuple[str, ...], upload_id: str,
                       token: str, completed: ObjectManifest | None) -> None:
    """Tidy the volumes still holding an upload that ended on most of them (a gateway
    died half-way): roll them forward to the version it became, else abort them there.

    Safe against a winner still at work: its claims keep us off the write quorum of
    volumes it acts on, so only volumes outside it are touched.
    """
    claims = await _claim_round(cluster, list(placement), upload_id, token,
                                "abort" if completed is None else "complete")
    if completed is None:
        await abort_on(cluster, claims.held, upload_id, token)
    else:
        await complete_on(cluster, claims.held, completed, token)
