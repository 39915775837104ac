"""Read path: find the newest committed version, then stream decoded byte ranges.

The read rule (DESIGN.md): ask the placement's volumes, the newest version committed on
any reachable one wins; if fewer than k of its fragments can be read, answer 503 rather
than fall back to an older version. For a range only the framed fragments of the
segments it touches are fetched, data fragments first, a parity fragment replacing any
that fails or fails its checksum.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from erasure import FragmentCorrupt, segment_span
from gateway.errors import quorum_lost
from gateway.objects.cluster import Cluster
from gateway.objects.fanout import first_answers
from gateway.objects.volume_client import ArchiveStream, VolumeRejected, VolumeUnavailable
from shardgate.manifest import ObjectManifest, PartManifest
from shardgate.versionid import observe_version_id

THREAD_THRESHOLD = 64 * 1024


async def find_latest(cluster: Cluster, incarnation: str, key: str) -> ObjectManifest | None:
    """The newest committed manifest (None if absent or deleted); 503 if undecidable."""
    placement = cluster.placement(incarnation, key)
    enough = cluster.width - cluster.write_quorum + 1
    # Ask just enough volumes first (healthy ones, data-fragment holders first: the read
    # goes to them next); only if one of them fails are the others asked as well.
    order = sorted(placement, key=cluster.suspect)
    results = await first_answers({vid: cluster.volumes.latest(vid, incarnation, key)
                                   for vid in order[:enough]}, enough)
    if sum(not isinstance(r, BaseException) for r in results.values()) < enough:
        results |= await first_answers({vid: cluster.volumes.latest(vid, incarnation, key)
                                        for vid in order[enough:]},
                                       enough - len(answered_of(results)))
    cluster.note_answers(results)
    answered = answered_of(results)
    # A committed version lives on >= quorum of the placement: only when more than
    # width - quorum volumes answered is one of them sure to hold the newest version
    # (or its tombstone); with fewer, an older version or a deleted key could show.
    if len(answered) <= cluster.width - cluster.write_quorum:
        raise quorum_lost("Too few storage volumes answered.")
    found = [r for r in answered if r]
    if not found:
        return None
    newest = max(found, key=lambda r: r["version_id"])
    observe_version_id(newest["version_id"])
    if newest["deleted"]:
        return None
    return ObjectManifest.from_dict(newest["manifest"])


def answered_of(results: dict) -> list:
    return [r for r in results.values() if not isinstance(r, BaseException)]


class _PartReader:
    """Streams object bytes [start, end] (part-local, inclusive) of one part."""

    def __init__(self, cluster: Cluster, manifest: ObjectManifest, part: PartManifest,
                 start: int, end: int) -> None:
        self.cluster = cluster
        self.manifest = manifest
        self.part = part
        self.codec = cluster.codec_for(manifest.erasure)
        self.k = self.codec.k
        self.layout = self.codec.layout(part.size)
        self._ready: bytes | None = None
        self.span = segment_span(self.layout, start, end)
        self.start, self.end = start, end
        # Data fragments first (no decoding work), volumes that just failed to answer last.
        self.untried = sorted((i for i, holder in enumerate(part.placement) if holder),
                              key=lambda i: (cluster.suspect(part.placement[i]), i))
        self.streams: dict[int, ArchiveStream] = {}

    async def _open(self, index: int, segment: int) -> None:
        volume_id = self.part.placement[index]
        assert volume_id is not None
        archive = self.part.archive_id(self.manifest.incarnation, self.manifest.key, index)
        with contextlib.suppress(VolumeUnavailable, VolumeRejected):
            self.streams[index] = await self.cluster.volumes.open_archive(
                volume_id, archive, self.layout.archive_offset(segment), self.span.archive_end)

    async def ensure(self, segment: int) -> None:
        """Open streams (data indexes first) until k fragments can be had."""
        while len(self.streams) < self.k and self.untried:
            wanted = self.k - len(self.streams)
            batch, self.untried = self.untried[:wanted], self.untried[wanted:]
            await asyncio.gather(*(self._open(i, segment) for i in batch))
        if len(self.streams) < self.k:
            self.close()
            raise quorum_lost("Too few fragments of the object are readable.")

    def _drop(self, index: int) -> None:
        stream = self.streams.pop(index, None)
        if stream is not None:
            stream.close()

    async def _segment(self, segment: int) -> bytes:
        size = self.layout.framed_length(segment)
        fragments: dict[int, bytes] = {}
        while True:
            await self.ensure(segment)
            pending = [i for i in self.streams if i not in fragments]
            results = await asyncio.gather(*(self.streams[i].read_exactly(size)
                                             for i in pending), return_exceptions=True)
            for index, result in zip(pending, results, strict=True):
                if isinstance(result, BaseException):
                    self._drop(index)
                else:
                    fragments[index] = result
            if len(fragments) < self.k:
                continue
            try:
                if size >= THREAD_THRESHOLD:
                    return await asyncio.to_thread(self.codec.decode_segment, fragments)
                return self.codec.decode_segment(fragments)
            except FragmentCorrupt as bad:
                fragments.pop(bad.index, None)
                self._drop(bad.index)

    async def decode_first(self) -> None:
        """Decode the first segment now, so a failure is a 503 before any header is sent."""
        self._ready = await self._segment(self.span.first_segment)

    async def stream(self) -> AsyncIterator[bytes]:
        try:
            for segment in range(self.span.first_segment, self.span.last_segment + 1):
                if segment == self.span.first_segment and self._ready is not None:
                    data, self._ready = self._ready, None
                else:
                    data = await self._segment(segment)
                offset = self.layout.segment_offset(segment)
                lo = max(self.start, offset) - offset
                hi = min(self.end + 1, offset + len(data)) - offset
                yield data if (lo == 0 and hi == len(data)) else data[lo:hi]
        finally:
            self.close()

    def close(self) -> None:
        for index in list(self.streams):
            self._drop(index)


class ObjectReader:
    """Bytes [start, end] of an object across its parts; `prepare` fails fast with 503."""

    def __init__(self, cluster: Cluster, manifest: ObjectManifest, start: int, end: int) -> None:
        self.cluster = cluster
        self.manifest = manifest
        self.pieces: list[tuple[PartManifest, int, int]] = []
        offset = 0
        for part in manifest.parts:
            lo, hi = max(start, offset), min(end, offset + part.size - 1)
            if part.size and lo <= hi:
                self.pieces.append((part, lo - offset, hi - offset))
            offset += part.size
        self._first: _PartReader | None = None

    async def prepare(self) -> None:
        if self.pieces:
            part, lo, hi = self.pieces[0]
            self._first = _PartReader(self.cluster, self.manifest, part, lo, hi)
            await self._first.decode_first()

    def close(self) -> None:
        """Release the archive reads `prepare` opened (also when the body never started)."""
        if self._first:
            self._first.close()

    async def stream(self) -> AsyncIterator[bytes]:
        try:
            for n, (part, lo, hi) in enumerate(self.pieces):
                reader = self._first if n == 0 and self._first else _PartReader(
                    self.cluster, self.manifest, part, lo, hi)
                async for chunk in reader.stream():
                    yield chunk
        finally:
            if self._first:
                self._first.close()
