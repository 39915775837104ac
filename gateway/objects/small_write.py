"""Small objects written in one round trip: each volume's fragment rides in its commit.

A body below the inline threshold is small by definition, so it is read whole, verified,
encoded, and committed on every volume of the placement with the fragment inside the
commit: one request per volume instead of a stage and then a commit. Each commit is
fenced on the write's own version id, picked before any volume answered; one_trip.py
has why that shadows nothing acknowledged, and what a refusal means.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from gateway.errors import S3Error
from gateway.objects import one_trip, versions
from gateway.objects.cluster import Cluster
from gateway.objects.commit import commit_one, object_commit_payload
from gateway.objects.digests import BodyDigests
from gateway.objects.ingest import Expectations, Payload, new_digests, verify_body
from shardgate.faults import kill_point
from shardgate.manifest import ObjectManifest

log = logging.getLogger("shardgate.gateway.objects.small_write")


def fits(cluster: Cluster, expect: Expectations, incarnation: str, key: str) -> bool:
    """Whether a body so declared may be written to `key` in one round trip."""
    size = expect.size
    return (size is not None and size < cluster.config.gateway.inline_threshold
            and size <= expect.max_size and one_trip.allowed(cluster, incarnation, key))


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


async def commit_small(cluster: Cluster, manifest: ObjectManifest, small: SmallBody) -> None:
    """Commit `manifest` with its fragments on its placement in one round trip
    (one_trip.Refused if it must go two-phase)."""
    part = manifest.parts[0]
    placement = tuple(vid for vid in part.placement if vid is not None)
    as_dict = manifest.to_dict()
    calls = {}
    for index, volume_id in enumerate(part.placement):
        assert volume_id is not None
        archive = part.archive_id(manifest.incarnation, manifest.key, index)
        payload = object_commit_payload(manifest, volume_id, None, archive, True, [],
                                        as_dict)
        payload["data"] = base64.b64encode(small.archives[index]).decode("ascii")
        calls[volume_id] = commit_one(cluster, volume_id,
                                      one_trip.fenced_on_itself(manifest, payload))
    await one_trip.commit(cluster, manifest, placement, calls)


async def forget_kept(cluster: Cluster, kept: ObjectManifest) -> None:
    """Delete for good a refused one-trip write that stayed on a write quorum, once the
    two-phase write of the same PUT has superseded it: in a versioning-enabled bucket it
    would otherwise show as a second version of one PUT (a null one is replaced anyway).
    Called before the PUT is answered; a gateway that dies first leaves it, as any crash
    past a commit leaves a version whose PUT was never acknowledged."""
    kill_point("gateway.before_forget_kept")
    try:
        await versions.forget(cluster, kept)
    except S3Error as exc:  # the PUT stands; tombstones that landed roll forward, and
        # a version no tombstone reached stays, as after a crash before this delete
        log.warning("%s/%s: the refused version %s stays for now: %s", kept.incarnation,
                    kept.key, kept.version_id, exc.message)


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
