"""Writes committed in one round trip, each commit fenced on its own version id.

A small PUT (its fragments inside the commits, small_write.py) and a DELETE's marker
need no stage, so they can be committed on every volume of the placement at once. The
catch is the version id. The two-phase write picks it after the stage answers brought
back each volume's clock, so it is newer than any version a quorum holds; a DELETE used
to read the key first for the same reason. Here it is picked before any volume answers,
so each commit is fenced on itself: a volume refuses it (409) when it holds any version
of the key newer than this one, pending or durable. Why an acknowledged one-trip write
then shadows nothing acknowledged before it began: an earlier acknowledged version is on
a write quorum of the key's placement, this write is on an acknowledging quorum of the
same placement that counts no rebuilding volume, and the two always share a volume (the
path is only taken when write quorum + acknowledging quorum > width), which would have
refused. While fragments move to a new ring, an earlier version may be proven on the
key's placement in the ring before, which this write does not ask: such a key goes the
two-phase way from the start (docs/cluster-map.md has the rules for writes during a
move). On any refusal, the commits that landed are rolled back and the write goes the
two-phase way (the caller's job); a volume's clock rides on its refusal, so that
write's id is newer. Too few voting answers (volumes down, or rebuilding ones, which do
not vote here) also send it the two-phase way, whose rules for those cases are
docs/durability.md's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from gateway.objects.cluster import Cluster
from gateway.objects.commit import (
    COMMIT_GRACE_SECONDS,
    commit_one,
    notify_durable,
    object_commit_payload,
)
from gateway.objects.conditional import roll_back
from gateway.objects.fanout import answered, first_answers
from gateway.objects.volume_errors import VolumeRejected
from shardgate.faults import kill_point
from shardgate.manifest import ObjectManifest

log = logging.getLogger("shardgate.gateway.objects.one_trip")


class Refused(Exception):
    """The one-trip write was not acknowledged (a volume holds a newer version of the
    key, or too few voting volumes took it): write it two-phase. Below the write quorum
    it is rolled back; on it, it stays and is superseded (no reader can then lose it),
    and `kept` says so."""

    def __init__(self, why: str, kept: bool = False) -> None:
        super().__init__(why)
        self.kept = kept


def allowed(cluster: Cluster, incarnation: str, key: str) -> bool:
    """Whether a commit fenced on itself meets every acknowledged version of the key: any
    write quorum and any acknowledging quorum of its placement share a volume, and no
    move leaves versions of the key on a placement of the ring before."""
    return (cluster.write_quorum + cluster.ack_quorum > cluster.width
            and cluster.previous_placement(incarnation, key) is None)


def fenced_on_itself(manifest: ObjectManifest, payload: dict) -> dict:
    """A commit payload that a volume holding a newer version of the key refuses."""
    return payload | {"expect_newest": manifest.version_id}


async def commit(cluster: Cluster, manifest: ObjectManifest, placement: tuple[str, ...],
                 calls: dict[str, Awaitable[dict]]) -> None:
    """Await the commits `calls` (one per volume of `placement`, each fenced on itself);
    Refused unless the acknowledging quorum of voting volumes took it and none refused
    it (rolled back where it landed if that was below the write quorum)."""
    results = await first_answers(calls, cluster.ack_quorum, grace=COMMIT_GRACE_SECONDS,
                                  cancel_rest=False)
    landed = answered(results)
    refused = [vid for vid, r in results.items()
               if isinstance(r, VolumeRejected) and r.conflict]
    voting = [vid for vid, answer in landed.items() if not answer.get("rebuilding")]
    if refused or len(voting) < cluster.ack_quorum:
        for vid, result in results.items():
            if isinstance(result, BaseException) and vid not in refused:
                log.warning("one-trip commit on %s failed: %r", vid, result)
        why = (f"newer versions on {refused}" if refused
               else f"{len(voting)} voting volumes took it")
        kept = len(voting) >= cluster.write_quorum
        log.info("%s/%s: one-trip write not acknowledged (%s); %s, and it goes two-phase",
                 manifest.incarnation, manifest.key, why,
                 "kept on the write quorum" if kept else "rolled back")
        if kept:
            # On the write quorum, a GET may already have proven and begun to serve it:
            # it stays, committed though never acknowledged (as after a gateway crash
            # past the commit), and the two-phase write that follows supersedes it.
            notify_durable(cluster, manifest, placement, set(landed))
            raise Refused(why, kept=True)
        await roll_back(cluster, manifest, list(landed))
        raise Refused(why)
    kill_point("gateway.after_commit")
    notify_durable(cluster, manifest, placement, set(landed))


async def commit_marker(cluster: Cluster, placement: tuple[str, ...],
                        marker: ObjectManifest) -> None:
    """A DELETE's marker committed without reading the key first; Refused if it must
    be written after a read."""
    as_dict = marker.to_dict()
    calls = {vid: commit_one(cluster, vid, fenced_on_itself(
                 marker, object_commit_payload(marker, vid, None, None, False, [], as_dict)))
             for vid in placement}
    await commit(cluster, marker, placement, calls)
