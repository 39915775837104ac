"""Small objects written in one round trip: each volume's fragment rides in its commit.

A body below the inline threshold is small by definition, so it is read whole, verified,
encoded, and committed on every volume of the placement with the fragment inside the
commit: one request per volume instead of a stage and then a commit.

The catch is the version id. The two-phase write picks it after the stage answers
brought back each volume's clock, so it is newer than any version a quorum holds. Here it
is picked before any volume answers, so each commit is fenced on itself: a volume refuses
it (409) when it holds any version of the key newer than this one, pending or durable.
Why an acknowledged one-trip write then shadows nothing acknowledged before it began: an
earlier acknowledged version is on a write quorum, this write is on a write quorum that
counts no rebuilding volume, and two write quorums of one placement always share a volume
(the path is only taken when 2 x quorum > width), which would have refused. On any
refusal, the commits that landed are rolled back and the write goes the two-phase way
(the caller's job); a volume's clock rides on its refusal, so that write's id is newer.
Too few voting answers (volumes down, or rebuilding ones, which do not vote here) also
send it the two-phase way, whose rules for those cases are docs/durability.md's.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from gateway.errors import S3Error
from gateway.objects.cluster import Cluster
from gateway.objects.commit import (
    COMMIT_GRACE_SECONDS,
    commit_one,
    notify_durable,
    object_commit_payload,
)
from gateway.objects.conditional import roll_back
from gateway.objects.digests import BodyDigests
from gateway.objects.fanout import answered, first_answers
from gateway.objects.ingest import Expectations, Payload, new_digests, verify_body
from gateway.objects.volume_errors import VolumeRejected
from shardgate.faults import kill_point
from shardgate.manifest import ObjectManifest

log = logging.getLogger("shardgate.gateway.objects.small_write")


def fits(cluster: Cluster, expect: Expectations) -> bool:
    """Whether a body so declared may be written in one round trip."""
    size = expect.size
    return (size is not None and size < cluster.config.gateway.inline_threshold
            and size <= expect.max_size and 2 * cluster.ack_quorum > cluster.width)


@dataclass(frozen=True)
class SmallBody:
    """A whole small body, verified, and the fragment archives it encodes to."""

    data: bytes
    digests: BodyDigests
    checksum: str  # base64, of the client's algorithm or ours
    trailers: dict[str, str]
    archives: list[bytes]  # by fragment index


async def read_small(cluster: Cluster, body: Payload, expect: Expectations,
                     seeds: list[int]) -> SmallBody:
    """Read, verify and encode a body `fits` admitted (never more than its declared size
    is held: a longer body is IncompleteBody, as on the streaming path)."""
    assert expect.size is not None
    digests = new_digests(expect)
    chunks: list[bytes] = []
    async for chunk in body:
        digests.update(chunk)
        if digests.size > expect.size:
            raise S3Error("IncompleteBody")
        chunks.append(bytes(chunk))
    checksum = verify_body(digests, expect, body.trailers)
    data = b"".join(chunks)
    codec = cluster.codec
    per_index: list[list[bytes]] = [[] for _ in range(cluster.width)]
    for offset in range(0, len(data), codec.segment_size):
        segment = data[offset:offset + codec.segment_size]
        for i, fragment in enumerate(codec.encode_segment(segment, seeds)):
            per_index[i].append(fragment)
    return SmallBody(data, digests, checksum, body.trailers,
                     [b"".join(parts) for parts in per_index])


class Refused(Exception):
    """The one-trip write was not acknowledged (a volume holds a newer version of the
    key, or too few voting volumes took it): write it two-phase. Below the write quorum
    it is rolled back; on it, it stays and is superseded (no reader can then lose it)."""


async def commit_small(cluster: Cluster, manifest: ObjectManifest, small: SmallBody) -> None:
    """Commit `manifest` with its fragments on its placement; Refused, after rolling
    back where it landed, unless the write quorum of voting volumes took it and none
    refused it."""
    part = manifest.parts[0]
    placement = tuple(vid for vid in part.placement if vid is not None)
    as_dict = manifest.to_dict()
    calls = {}
    for index, volume_id in enumerate(part.placement):
        assert volume_id is not None
        archive = part.archive_id(manifest.incarnation, manifest.key, index)
        payload = object_commit_payload(manifest, volume_id, None, archive, True, [],
                                        as_dict)
        payload |= {"expect_newest": manifest.version_id,
                    "data": base64.b64encode(small.archives[index]).decode("ascii")}
        calls[volume_id] = commit_one(cluster, volume_id, payload)
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
            raise Refused(why)
        await roll_back(cluster, manifest, list(landed))
        raise Refused(why)
    kill_point("gateway.after_commit")
    notify_durable(cluster, manifest, placement, set(landed))


class BytesPayload:
    """A small body already read, as a request body again (for the two-phase fallback)."""

    def __init__(self, small: SmallBody) -> None:
        self._small = small

    @property
    def trailers(self) -> dict[str, str]:
        return self._small.trailers

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._small.data:
            yield self._small.data
