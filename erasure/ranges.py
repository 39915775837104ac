"""Range math: an HTTP Range header -> object bytes -> segments -> byte ranges in each archive.

Every range here is inclusive at both ends, as HTTP writes them (`bytes=0-9` is 10
bytes), except SegmentSlice, which is a Python slice (stop excluded) for trimming.
The worked examples use segment_size = 1 MiB = 1,048,576 and 4+2 isa_l_rs_vand, whose
framed fragment of a full segment is 262,228 bytes (see erasure/layout.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from erasure.errors import RangeNotSatisfiable
from erasure.layout import ArchiveLayout

_SPEC = re.compile(r"([0-9]*)-([0-9]*)")
_HUGE = 1 << 64  # stands for any position with more than 19 digits: past every object


def _position(digits: str) -> int:
    """Parse ASCII digits; absurdly long ones (int() refuses > 4,300) become _HUGE."""
    digits = digits.lstrip("0") or "0"
    return _HUGE if len(digits) > 19 else int(digits)


def resolve_range(header_value: str, size: int) -> tuple[int, int] | None:
    """Resolve a `Range` header against an object of `size` bytes to inclusive (start, end).

    Follows RFC 9110 section 14.1.2 (byte ranges) and 14.2 (Range), as S3 applies them:

    - None means "ignore the header, answer 200 with the whole object": another unit
      than `bytes` (14.2: a recipient MUST ignore a Range with a unit it does not
      understand), anything syntactically invalid, including last-pos < first-pos
      (14.1.1: such a byte-range-spec is invalid), and more than one range (S3 serves a
      single range only and ignores a multi-range header).
    - RangeNotSatisfiable (416 InvalidRange) when no byte is named: first-pos >= size,
      a zero suffix (`-0`), and any range of an empty object (S3 answers 416 even for
      `bytes=0-`; an empty object has no byte, and no `Content-Range` can say
      `bytes 0--1/0`).

    Worked examples with size = 10 (bytes 0..9):

    - `bytes=0-4` -> (0, 4): five bytes, both ends included.
    - `bytes=8-100` -> (8, 9): a last-pos past the end is clamped to size - 1 = 9.
    - `bytes=5-` -> (5, 9): no last-pos means "to the end", size - 1.
    - `bytes=-3` -> (7, 9): the last 3 bytes start at size - 3 = 7 (not 10 - 3 - 1:
      the suffix counts bytes, and 7, 8, 9 are three).
    - `bytes=-100` -> (0, 9): a suffix longer than the object is the whole object.
    - `bytes=9-9` -> (9, 9): one byte; `bytes=10-` and `bytes=10-20` -> 416, as
      position 10 is one past the last byte; `bytes=-0` -> 416.
    - `bytes=4-2`, `bytes=-`, `bytes=a-b`, `bytes=0-1,4-5`, `items=0-1` -> None.
    """
    unit, sep, range_set = header_value.strip().partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    specs = [spec.strip() for spec in range_set.split(",")]
    specs = [spec for spec in specs if spec]  # RFC 9110 5.6.1: empty list elements are allowed
    if len(specs) != 1:
        return None
    match = _SPEC.fullmatch(specs[0])
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return None
    if not first:  # suffix range `-n`: the last n bytes
        suffix = _position(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return max(0, size - suffix), size - 1
    start = _position(first)
    end = _position(last) if last else None
    if end is not None and end < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(size)
    return start, size - 1 if end is None else min(end, size - 1)


@dataclass(frozen=True)
class SegmentSpan:
    """What to fetch from each fragment archive, and what to keep, for one byte range."""

    first_segment: int
    last_segment: int
    archive_start: int
    """First byte to read in every archive: where first_segment's framed fragment starts."""
    archive_end: int
    """Last byte to read (inclusive): where last_segment's framed fragment ends."""
    skip: int
    """Bytes to drop from the front of first_segment once decoded."""
    length: int
    """Bytes to deliver in all: end - start + 1."""


def segment_span(layout: ArchiveLayout, start: int, end: int) -> SegmentSpan:
    """Map object bytes [start, end] (inclusive) to whole framed fragments in each archive.

    Whole fragments, because each carries the CRC32C of all of it: a partial one cannot
    be checked (except as a sliced read, slices.py, checked on its volume) or decoded.
    Worked example, a 2.5 MiB object (archive 655,612 bytes) and `bytes=1048570-1048585`,
    16 bytes across the first segment boundary:

    - first_segment = 1,048,570 // 1,048,576 = 0; last_segment = 1,048,585 // 1,048,576
      = 1 (byte 1,048,576 is the first of segment 1, so 1,048,585 is its tenth).
    - archive_start = archive_offset(0) = 0.
    - archive_end = archive_offset(1) + framed_length(1) - 1 = 262,228 + 262,228 - 1 =
      524,455: offset + length is the first byte *after* segment 1's fragment, so
      subtract one to get the last byte inside it, as an HTTP range on the volume wants.
    - skip = start - segment_offset(0) = 1,048,570: decoded segment 0 starts at object
      byte 0, so bytes 0..1,048,569 of it are dropped.
    - length = end - start + 1 = 16: both ends are included, so 1,048,570..1,048,585 is
      16 bytes, not 15.

    The whole 2.5 MiB object, bytes [0, 2,621,439], spans segments 0..2 and archive bytes
    [0, 524,456 + 131,156 - 1] = [0, 655,611], the whole archive; skip = 0.
    """
    _check_range(layout, start, end)
    first, last = layout.segment_at(start), layout.segment_at(end)
    return SegmentSpan(
        first_segment=first,
        last_segment=last,
        archive_start=layout.archive_offset(first),
        archive_end=layout.archive_offset(last) + layout.framed_length(last) - 1,
        skip=start - layout.segment_offset(first),
        length=end - start + 1,
    )


class SegmentSlice(NamedTuple):
    """Keep decoded[start:stop] of segment `index` (a Python slice: stop is excluded)."""

    index: int
    start: int
    stop: int


def iter_segment_slices(layout: ArchiveLayout, start: int,
                        end: int) -> Iterator[SegmentSlice]:
    """For object bytes [start, end] (inclusive), which part of each decoded segment to keep.

    Worked example, 2.5 MiB object, `bytes=1048570-2097160` (segments 0, 1 and 2):

    - segment 0 covers object bytes [0, 1,048,575]: keep from 1,048,570 - 0 to the end,
      SegmentSlice(0, 1048570, 1048576); stop = 1,048,575 + 1 - 0, one past the last.
    - segment 1 lies wholly inside: SegmentSlice(1, 0, 1048576).
    - segment 2 starts at object byte 2,097,152; the range ends at 2,097,160, its byte
      8, so keep bytes 0..8: SegmentSlice(2, 0, 9), stop = 2,097,160 + 1 - 2,097,152.

    The kept bytes add up to end - start + 1 = 6 + 1,048,576 + 9 = 1,048,591.
    """
    _check_range(layout, start, end)
    for index in range(layout.segment_at(start), layout.segment_at(end) + 1):
        offset = layout.segment_offset(index)
        # Clip [start, end + 1) to this segment's [offset, offset + length), then make
        # the result relative to the segment's first byte.
        lo = max(start, offset)
        hi = min(end + 1, offset + layout.segment_length(index))
        yield SegmentSlice(index, lo - offset, hi - offset)


def _check_range(layout: ArchiveLayout, start: int, end: int) -> None:
    if not 0 <= start <= end < layout.size:
        raise ValueError(f"range [{start}, {end}] is not inside an object of {layout.size} bytes")
