"""Range math: every range, cut from k fragment archives and decoded, gives exactly its bytes."""

from __future__ import annotations

import random
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erasure import (
    ArchiveLayout,
    Codec,
    RangeNotSatisfiable,
    SegmentSlice,
    iter_segment_slices,
    resolve_range,
    segment_span,
)

SEG = 4096
CONFIGS = [(4, 2, "isa_l_rs_vand"), (3, 2, "isa_l_rs_vand"), (6, 3, "isa_l_rs_cauchy")]
SIZES = [1, 2, SEG - 1, SEG, SEG + 1, 2 * SEG, 3 * SEG + 17]


@cache
def stored(k: int, m: int, ec_type: str, size: int) -> tuple[Codec, bytes, list[bytes]]:
    """An object of `size` bytes, encoded into its k+m fragment archives, in memory."""
    codec = Codec(k, m, ec_type, segment_size=SEG)
    data = random.Random(size).randbytes(size)
    archives = [bytearray() for _ in range(k + m)]
    for offset in range(0, size, SEG):
        for index, framed in enumerate(codec.encode_segment(data[offset:offset + SEG])):
            archives[index] += framed
    return codec, data, [bytes(a) for a in archives]


def read_range(codec: Codec, size: int, archives: list[bytes], start: int, end: int,
               indexes: list[int]) -> bytes:
    """What the gateway does: fetch archive_start..archive_end from k archives, decode, trim."""
    layout = codec.layout(size)
    span = segment_span(layout, start, end)
    pieces = {i: archives[i][span.archive_start:span.archive_end + 1] for i in indexes}
    decoded = bytearray()
    pos = 0
    for segment in range(span.first_segment, span.last_segment + 1):
        length = layout.framed_length(segment)
        decoded += codec.decode_segment({i: p[pos:pos + length] for i, p in pieces.items()})
        pos += length
    assert all(pos == len(p) for p in pieces.values())  # the span is whole fragments only
    by_span = bytes(decoded[span.skip:span.skip + span.length])
    # The same bytes again, trimmed segment by segment with iter_segment_slices.
    segments = _split(decoded, layout, span.first_segment, span.last_segment)
    by_slices = b"".join(segments[s.index][s.start:s.stop]
                         for s in iter_segment_slices(layout, start, end))
    assert by_slices == by_span
    return by_span


def _split(decoded: bytearray, layout: ArchiveLayout, first: int, last: int) -> dict[int, bytes]:
    out, pos = {}, 0
    for segment in range(first, last + 1):
        out[segment] = bytes(decoded[pos:pos + layout.segment_length(segment)])
        pos += layout.segment_length(segment)
    return out


def header_for(start: int | None, end: int | None) -> str:
    return f"bytes={'' if start is None else start}-{'' if end is None else end}"


def expected(data: bytes, start: int | None, end: int | None) -> bytes | None:
    """The bytes a Range names, by Python slicing; None when it names none (416)."""
    size = len(data)
    if start is None:  # suffix
        return data[-end:] if end and size else None
    if start >= size:
        return None
    return data[start:] if end is None else data[start:end + 1]


@pytest.mark.parametrize(("k", "m", "ec_type"), CONFIGS,
                         ids=[f"{k}+{m}-{t}" for k, m, t in CONFIGS])
@settings(deadline=None, max_examples=60)
@given(size=st.sampled_from(SIZES), a=st.integers(0, 4 * SEG), b=st.integers(0, 4 * SEG),
       form=st.sampled_from(["closed", "open", "suffix"]), pick=st.randoms())
def test_every_range_maps_to_exactly_its_bytes(k: int, m: int, ec_type: str, size: int,
                                               a: int, b: int, form: str, pick) -> None:
    codec, data, archives = stored(k, m, ec_type, size)
    start, end = {"closed": (min(a, b), max(a, b)), "open": (a, None),
                  "suffix": (None, b)}[form]
    want = expected(data, start, end)
    if want is None:
        with pytest.raises(RangeNotSatisfiable):
            resolve_range(header_for(start, end), size)
        return
    resolved = resolve_range(header_for(start, end), size)
    assert resolved is not None
    first, last = resolved
    assert data[first:last + 1] == want
    indexes = pick.sample(range(k + m), k)
    assert read_range(codec, size, archives, first, last, indexes) == want


@pytest.mark.parametrize("size", SIZES)
def test_ranges_at_every_segment_edge(size: int) -> None:
    codec, data, archives = stored(4, 2, "isa_l_rs_vand", size)
    edges = sorted({p for s in range(0, size, SEG) for p in (s - 1, s, s + 1)
                    if 0 <= p < size} | {0, size - 1})
    for start in edges:
        for end in edges:
            if start <= end:
                assert read_range(codec, size, archives, start, end, [0, 1, 2, 3]) == \
                    data[start:end + 1]
                assert read_range(codec, size, archives, start, end, [5, 1, 4, 2]) == \
                    data[start:end + 1]


def test_span_worked_example_from_the_docstring() -> None:
    layout = Codec(4, 2).layout(2_621_440)
    assert layout.archive_size == 655_612
    span = segment_span(layout, 1_048_570, 1_048_585)
    assert (span.first_segment, span.last_segment) == (0, 1)
    assert (span.archive_start, span.archive_end) == (0, 524_455)
    assert (span.skip, span.length) == (1_048_570, 16)
    whole = segment_span(layout, 0, 2_621_439)
    assert (whole.first_segment, whole.last_segment) == (0, 2)
    assert (whole.archive_start, whole.archive_end) == (0, 655_611)
    assert list(iter_segment_slices(layout, 1_048_570, 2_097_160)) == [
        SegmentSlice(0, 1_048_570, 1_048_576), SegmentSlice(1, 0, 1_048_576),
        SegmentSlice(2, 0, 9)]


def test_span_rejects_ranges_outside_the_object() -> None:
    layout = Codec(4, 2, segment_size=SEG).layout(100)
    for start, end in [(-1, 5), (5, 4), (0, 100), (100, 100)]:
        with pytest.raises(ValueError):
            segment_span(layout, start, end)
        with pytest.raises(ValueError):
            list(iter_segment_slices(layout, start, end))
    with pytest.raises(ValueError):
        segment_span(Codec(4, 2).layout(0), 0, 0)


@pytest.mark.parametrize(("header", "want"), [
    ("bytes=0-4", (0, 4)),
    ("bytes=8-100", (8, 9)),
    ("bytes=5-", (5, 9)),
    ("bytes=-3", (7, 9)),
    ("bytes=-100", (0, 9)),
    ("bytes=9-9", (9, 9)),
    ("bytes=0-0", (0, 0)),
    ("bytes=-10", (0, 9)),
    ("bytes=0-", (0, 9)),
    ("Bytes=1-2", (1, 2)),
    (" bytes=1-2 ", (1, 2)),
    ("bytes= 1-2", (1, 2)),
    ("bytes=1-2,", (1, 2)),
    ("bytes=007-0008", (7, 8)),
    ("bytes=3-" + "9" * 5000, (3, 9)),
])
def test_resolve_range_worked_cases(header: str, want: tuple[int, int]) -> None:
    assert resolve_range(header, 10) == want


@pytest.mark.parametrize("header", [
    "bytes=4-2", "bytes=-", "bytes=", "bytes", "bytes=a-b", "bytes=1-2,4-5", "bytes=0-1,-3",
    "items=0-1", "bytes 0-1", "bytes=1 - 2", "bytes=+1-2", "bytes=1-2-3", "bytes=--3",
    "bytes=\u0661-2", "bytes=0x1-2", "", "=0-1",
])
def test_resolve_range_ignores_what_it_cannot_parse(header: str) -> None:
    assert resolve_range(header, 10) is None


@pytest.mark.parametrize(("header", "size"), [
    ("bytes=10-", 10), ("bytes=10-20", 10), ("bytes=40-50", 11), ("bytes=-0", 10),
    ("bytes=" + "9" * 5000 + "-", 10), ("bytes=0-", 0), ("bytes=0-0", 0),
    ("bytes=40-50", 0), ("bytes=-1", 0), ("bytes=-0", 0),
])
def test_resolve_range_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable) as caught:
        resolve_range(header, size)
    assert caught.value.size == size


def test_invalid_wins_over_unsatisfiable() -> None:
    # An invalid header is ignored (200) even when it would also be out of range.
    assert resolve_range("bytes=20-10", 5) is None
    assert resolve_range("bytes=0-1,20-30", 0) is None
