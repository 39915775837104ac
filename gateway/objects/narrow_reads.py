"""Short ranges: one stream per data fragment, each over just the segments it holds bytes of.

A range of a few segments (a KV-cache block, a tensor slice) wants whole middle segments
but only part of its edge segments. With a systematic code, data fragment i of a
segment holds the segment's bytes [i * p, (i + 1) * p): so fragment i is needed for a
contiguous run of the range's segments, and one ranged read per data fragment fetches
exactly those fragments. Every fragment is CRC-checked, the bytes are joined, nothing is
decoded. Any failure (a volume that does not answer, a fragment that fails its check)
ends the narrow read: the caller reads that segment and the rest the ordinary way,
which decodes around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from erasure import FragmentCorrupt
from gateway.objects.shared_reads import PartSource
from gateway.objects.volume_client import ArchiveStream, VolumeRejected, VolumeUnavailable

NARROW_SEGMENTS = 4  # ranges over at most this many segments are read narrowly
log = logging.getLogger("shardgate.gateway.reader")


class NarrowRange:
    """Segments first..last of one part, each wanted between `wanted[s]` (lo, hi)."""

    def __init__(self, source: PartSource, wanted: dict[int, tuple[int, int]]) -> None:
        self.source = source
        self.wanted = wanted
        layout = source.layout
        self.needs = {s: source.codec.data_indexes(layout.segment_length(s), lo, hi)
                      for s, (lo, hi) in wanted.items()}
        self.streams: dict[int, ArchiveStream] = {}

    @classmethod
    def usable(cls, source: PartSource, segments: int) -> bool:
        part = source.part
        holders = part.placement[: source.k]
        return (source.codec.systematic and not part.inline and segments <= NARROW_SEGMENTS
                and all(h is not None and not source.cluster.suspect(h) for h in holders))

    async def open(self) -> bool:
        """Open one read per data fragment the range needs; False (nothing left open)
        if any fails."""
        layout = self.source.layout
        runs: dict[int, list[int]] = {}
        for segment, indexes in sorted(self.needs.items()):
            for index in indexes:
                runs.setdefault(index, []).append(segment)
        results = await asyncio.gather(*(
            self._open(index, layout.archive_offset(segs[0]),
                       layout.archive_offset(segs[-1]) + layout.framed_length(segs[-1]) - 1)
            for index, segs in runs.items()), return_exceptions=True)
        if any(isinstance(r, BaseException) for r in results):
            self.close()
            for result in results:
                if isinstance(result, BaseException) and not isinstance(
                        result, VolumeUnavailable | VolumeRejected):
                    raise result
            return False
        return True

    async def _open(self, index: int, start: int, end: int) -> None:
        part, manifest = self.source.part, self.source.manifest
        volume_id = part.placement[index]
        assert volume_id is not None
        archive = part.archive_id(manifest.incarnation, manifest.key, index)
        self.streams[index] = await self.source.cluster.volumes.open_archive(
            volume_id, archive, start, end)

    async def segment(self, segment: int) -> bytes | None:
        """The wanted bytes of `segment`, or None (and every stream closed) if one of its
        fragments could not be read intact."""
        size = self.source.layout.framed_length(segment)
        indexes = list(self.needs[segment])
        try:
            framed = await asyncio.gather(*(self.streams[i].read_exactly(size)
                                            for i in indexes))
        except (VolumeUnavailable, VolumeRejected):
            self.close()
            return None
        lo, hi = self.wanted[segment]
        try:
            return self.source.codec.join_data(
                dict(zip(indexes, framed, strict=True)),
                self.source.layout.segment_length(segment), lo, hi, self.source.seeds)
        except FragmentCorrupt as corrupt:
            self.source.report(corrupt, segment)
            self.close()
            return None

    def close(self) -> None:
        for stream in self.streams.values():
            with contextlib.suppress(Exception):
                stream.close()
        self.streams.clear()
