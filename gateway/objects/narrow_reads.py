"""Short ranges: one stream per data fragment, each over just the segments it holds bytes of.

A range of a few segments (a KV-cache block, a tensor slice) wants whole middle segments
but only part of its edge segments. With a systematic code, data fragment i of a
segment holds the segment's bytes [i * p, (i + 1) * p): so fragment i is needed for a
contiguous run of the range's segments, and one ranged read per data fragment fetches
exactly those fragments. Every fragment is CRC-checked, the bytes are joined, nothing is
decoded. For a seeded part each read asks for just the wanted slice of each fragment,
checked against the fragment's stored CRC on its volume (erasure/slices.py). Any
failure (a volume that does not answer, a fragment that fails its check) ends the
narrow read: the caller reads that segment and the rest the ordinary way, which
decodes around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from erasure import FragmentCorrupt, SliceSpec
from gateway.objects.range_shape import RangeShape
from gateway.objects.read_ahead import ReadAhead
from gateway.objects.shared_reads import PartSource
from gateway.objects.volume_errors import VolumeRejected, VolumeUnavailable
from gateway.objects.volume_transport import ArchiveStream

log = logging.getLogger("shardgate.gateway.reader")


class NarrowRange:
    """A narrow range of one part (range_shape.py); reads its GET's read-ahead opened
    are used, the others opened here."""

    def __init__(self, source: PartSource, shape: RangeShape,
                 ahead: ReadAhead | None = None) -> None:
        self.source = source
        self.shape = shape
        self.ahead = ahead
        self.needs = shape.narrow_needs(source.codec)
        self.streams: dict[int, ArchiveStream] = {}
        # Sliced reads need the archive seeds (a part written before them reads whole).
        self.sizes = shape.slice_sizes(source.codec) if source.seeds is not None else None

    @classmethod
    def usable(cls, source: PartSource, shape: RangeShape) -> bool:
        return shape.narrow and ReadAhead.healthy_data(source.cluster, source.codec,
                                                        source.part)

    async def open(self) -> bool:
        """Open one read per data fragment the range needs; False (nothing left open)
        if any fails."""
        codec = self.source.codec
        if self.source.seeds is not None:
            reads = self.shape.narrow_slices(codec, self.source.seeds)
        else:
            reads = {index: (start, end, None) for index, (start, end)
                     in self.shape.narrow_reads(codec).items()}
        results = await asyncio.gather(*(self._open(index, *read)
                                         for index, read in reads.items()),
                                       return_exceptions=True)
        if any(isinstance(r, BaseException) for r in results):
            self.close()
            for result in results:
                if isinstance(result, BaseException) and not isinstance(
                        result, VolumeUnavailable | VolumeRejected):
                    raise result
            return False
        return True

    async def _open(self, index: int, start: int, end: int,
                    slices: SliceSpec | None) -> None:
        part, manifest = self.source.part, self.source.manifest
        volume_id = part.placement[index]
        assert volume_id is not None
        archive = part.archive_id(manifest.incarnation, manifest.key, index)
        ahead = self.ahead.take(index, start, end, slices) if self.ahead else None
        self.streams[index] = ahead or await self.source.cluster.volumes.open_archive(
            volume_id, archive, start, end, slices)

    async def segment(self, segment: int) -> bytes | None:
        """The wanted bytes of `segment`, or None (and every stream closed) if one of its
        fragments could not be read intact."""
        framed_size = self.source.layout.framed_length(segment)
        sizes = self.sizes[segment] if self.sizes is not None else None
        indexes = list(self.needs[segment])
        try:
            framed = await asyncio.gather(*(
                self.streams[i].read_exactly(sizes[i] if sizes else framed_size)
                for i in indexes))
        except (VolumeUnavailable, VolumeRejected):
            self.close()
            return None
        lo, hi = self.shape.wanted(segment)
        length = self.source.layout.segment_length(segment)
        pieces = dict(zip(indexes, framed, strict=True))
        try:
            if sizes is not None:
                return self.source.codec.join_slices(pieces, length, lo, hi)
            return self.source.codec.join_data(pieces, length, lo, hi, self.source.seeds)
        except FragmentCorrupt as corrupt:
            self.source.report(corrupt, segment)
            self.close()
            return None

    def close(self) -> None:
        for stream in self.streams.values():
            with contextlib.suppress(Exception):
                stream.close()
        self.streams.clear()
