"""Where each segment of an object (or part) lives, in the object and in every fragment archive.

An object of `size` bytes is cut into segments of `segment_size` bytes, the last one
shorter unless `size` is a multiple of it. Each segment encodes to k+m framed fragments
of equal length; fragment archive i is fragment i of every segment, concatenated. So all
k+m archives have the same length, and segment j starts at the same offset in each.

Worked example: size = 2.5 MiB = 2,621,440, segment_size = 1 MiB = 1,048,576, 4+2
`isa_l_rs_vand`. Segments 0 and 1 are full; segment 2 holds 2,621,440 - 2 * 1,048,576 =
524,288 bytes. A full segment's pyeclib fragment is 1,048,576 / 4 = 262,144 bytes of data
plus an 80-byte pyeclib header = 262,224, and 262,228 once framed with its CRC32C; the last
is 131,072 + 80 + 4 = 131,156. The archive is 2 * 262,228 + 131,156 = 655,612 bytes and
segment 2's fragment starts at byte 2 * 262,228 = 524,456 of every archive.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ArchiveLayout:
    """Sizes and offsets of one object's segments and of its framed fragments."""

    size: int
    """Bytes of the object (or multipart part)."""
    segment_size: int
    """Bytes of every segment but the last."""
    num_segments: int
    """ceil(size / segment_size); 0 for an empty object."""
    last_segment_size: int
    """Bytes of the last segment (segment_size when size is a multiple of it; 0 if empty)."""
    framed_fragment_size: int
    """Bytes of one framed fragment of a full segment (pyeclib fragment + CRC32C)."""
    last_framed_fragment_size: int
    """Bytes of one framed fragment of the last segment (0 if empty)."""
    archive_size: int
    """Bytes of one fragment archive: the same for every fragment index."""

    @classmethod
    def build(cls, size: int, segment_size: int,
              framed_size: Callable[[int], int]) -> ArchiveLayout:
        """Lay out `size` bytes; `framed_size(n)` is the framed fragment size of n bytes.

        The segment count is ceil(size / segment_size), written (size - 1) // segment_size
        + 1. With segment_size = 100: size 201 gives 200 // 100 + 1 = 3 segments, the
        third holding 201 - 2 * 100 = 1 byte; size 200 gives 199 // 100 + 1 = 2, both
        full (the -1 keeps an exact multiple from gaining an empty segment); size 1
        gives 0 // 100 + 1 = 1. Size 0 has no segments and an empty archive.
        """
        if size < 0:
            raise ValueError(f"size must be >= 0, not {size}")
        if segment_size < 1:
            raise ValueError(f"segment_size must be >= 1, not {segment_size}")
        full = framed_size(segment_size)
        if size == 0:
            return cls(0, segment_size, 0, 0, full, 0, 0)
        num_segments = (size - 1) // segment_size + 1
        last = size - (num_segments - 1) * segment_size
        last_framed = full if last == segment_size else framed_size(last)
        archive_size = (num_segments - 1) * full + last_framed
        return cls(size, segment_size, num_segments, last, full, last_framed, archive_size)

    def _check(self, i: int) -> bool:
        """Validate segment index i; return whether it is the last segment."""
        if not 0 <= i < self.num_segments:
            raise IndexError(f"segment {i} out of range 0..{self.num_segments - 1}")
        return i == self.num_segments - 1

    def segment_offset(self, i: int) -> int:
        """Offset of segment i's first byte in the object: i * segment_size."""
        self._check(i)
        return i * self.segment_size

    def segment_length(self, i: int) -> int:
        """Bytes of segment i once decoded."""
        return self.last_segment_size if self._check(i) else self.segment_size

    def archive_offset(self, i: int) -> int:
        """Offset of segment i's framed fragment in every archive.

        Only the last segment's fragment may be shorter, and nothing follows it, so the
        fragments before segment i all have the full length: i * framed_fragment_size.
        """
        self._check(i)
        return i * self.framed_fragment_size

    def framed_length(self, i: int) -> int:
        """Bytes of segment i's framed fragment (the same for every fragment index)."""
        return self.last_framed_fragment_size if self._check(i) else self.framed_fragment_size

    def segment_at(self, offset: int) -> int:
        """Index of the segment holding object byte `offset`: offset // segment_size.

        Byte segment_size - 1 is the last byte of segment 0; byte segment_size is the
        first of segment 1.
        """
        if not 0 <= offset < self.size:
            raise IndexError(f"offset {offset} out of range 0..{self.size - 1}")
        return offset // self.segment_size
