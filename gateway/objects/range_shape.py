"""Which fragment bytes a range of one part is read from (pure): the reader follows this
shape, and a GET's read-ahead (read_ahead.py) opens the very same reads a round trip early.

A range that wants only part of an edge segment, over at most NARROW_SEGMENTS segments,
is read narrowly: one read per data fragment it needs, over just the segments that
fragment holds wanted bytes of (systematic codes only). Otherwise whole segments are
read through k fragment streams from the first whole segment to `whole_end`. A
narrow read of a seeded part asks for just the wanted slice of each fragment
(`narrow_slices`, erasure/slices.py), so no edge fragment crosses the wire whole.
"""

from __future__ import annotations

from erasure import SLICE_OVERHEAD, ArchiveLayout, Codec, SegmentSpan, SliceSpec, segment_span

NARROW_SEGMENTS = 4  # ranges over at most this many segments are read narrowly


class RangeShape:
    """Part-local object bytes [start, end] (inclusive) laid over the part's segments."""

    def __init__(self, layout: ArchiveLayout, start: int, end: int) -> None:
        self.layout = layout
        self.start, self.end = start, end
        self.span: SegmentSpan = segment_span(layout, start, end)

    @property
    def segments(self) -> range:
        return range(self.span.first_segment, self.span.last_segment + 1)

    def wanted(self, segment: int) -> tuple[int, int]:
        """The segment-local bytes [lo, hi) of `segment` the range wants."""
        offset = self.layout.segment_offset(segment)
        length = self.layout.segment_length(segment)
        return max(self.start, offset) - offset, min(self.end + 1, offset + length) - offset

    def whole(self, segment: int) -> bool:
        lo, hi = self.wanted(segment)
        return hi - lo == self.layout.segment_length(segment)

    @property
    def partial(self) -> bool:
        """Whether an edge segment is wanted only in part."""
        return not all(self.whole(s) for s in (self.span.first_segment,
                                               self.span.last_segment))

    @property
    def narrow(self) -> bool:
        """Whether the range is read narrowly (the codec being systematic aside)."""
        return self.partial and len(self.segments) <= NARROW_SEGMENTS

    def whole_end(self) -> int:
        """The last archive byte of the segments read whole: an edge segment wanted only
        in part is cut from its data fragments, so streams stop before it."""
        last = self.span.last_segment
        if last > self.span.first_segment and not self.whole(last):
            last -= 1
        return self.layout.archive_offset(last) + self.layout.framed_length(last) - 1

    def narrow_needs(self, codec: Codec) -> dict[int, range]:
        """The data fragments each segment's wanted bytes are in."""
        return {s: codec.data_indexes(self.layout.segment_length(s), *self.wanted(s))
                for s in self.segments}

    def narrow_reads(self, codec: Codec) -> dict[int, tuple[int, int]]:
        """Archive bytes [first, last] to read of each data fragment the range needs:
        the run of segments it holds wanted bytes of (contiguous: fragment i of each
        segment holds the same slice of it)."""
        runs: dict[int, list[int]] = {}
        for segment, indexes in sorted(self.narrow_needs(codec).items()):
            for index in indexes:
                runs.setdefault(index, []).append(segment)
        layout = self.layout
        return {index: (layout.archive_offset(segs[0]),
                        layout.archive_offset(segs[-1]) + layout.framed_length(segs[-1]) - 1)
                for index, segs in runs.items()}

    def narrow_slices(self, codec: Codec, seeds: dict[int, int]
                      ) -> dict[int, tuple[int, int, SliceSpec]]:
        """The reads of `narrow_reads`, each with the slice of every fragment in it that
        holds wanted bytes: index -> (first, last, slices)."""
        frames: dict[int, list[tuple[int, int, int]]] = {}
        for segment in self.segments:
            length = self.layout.segment_length(segment)
            framed = self.layout.framed_length(segment)
            for index, (lo, hi) in codec.data_slices(length, *self.wanted(segment)).items():
                frames.setdefault(index, []).append((framed, lo, hi))
        return {index: (first, last, SliceSpec(seeds[index], tuple(frames[index])))
                for index, (first, last) in self.narrow_reads(codec).items()}

    def slice_sizes(self, codec: Codec) -> dict[int, dict[int, int]]:
        """segment -> {data fragment index: bytes its sliced read sends for it}."""
        sizes: dict[int, dict[int, int]] = {}
        for segment in self.segments:
            length = self.layout.segment_length(segment)
            sizes[segment] = {i: hi - lo + SLICE_OVERHEAD for i, (lo, hi) in
                              codec.data_slices(length, *self.wanted(segment)).items()}
        return sizes
