"""ArchiveLayout: segments tile the object, framed fragments tile every archive."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erasure import ArchiveLayout


def fake_framed(n: int) -> int:
    """Some framed size that is not a multiple of anything, like pyeclib's plus a CRC."""
    return (n + 2) // 3 + 84


@settings(deadline=None, max_examples=300)
@given(size=st.integers(0, 50_000), segment_size=st.integers(1, 5_000))
def test_segments_and_fragments_tile_without_gaps(size: int, segment_size: int) -> None:
    layout = ArchiveLayout.build(size, segment_size, fake_framed)
    offset = archive = 0
    for i in range(layout.num_segments):
        assert layout.segment_offset(i) == offset
        assert layout.archive_offset(i) == archive
        length = layout.segment_length(i)
        assert 1 <= length <= segment_size
        assert layout.framed_length(i) == fake_framed(length)
        assert layout.segment_at(offset) == layout.segment_at(offset + length - 1) == i
        offset += length
        archive += layout.framed_length(i)
    assert offset == size
    assert archive == layout.archive_size
    if size:
        assert layout.last_segment_size == layout.segment_length(layout.num_segments - 1)
        assert all(layout.segment_length(i) == segment_size
                   for i in range(layout.num_segments - 1))


@pytest.mark.parametrize(("size", "segments", "last"), [
    (0, 0, 0), (1, 1, 1), (99, 1, 99), (100, 1, 100), (101, 2, 1), (200, 2, 100),
    (201, 3, 1),
])
def test_segment_count_rounds_up(size: int, segments: int, last: int) -> None:
    layout = ArchiveLayout.build(size, 100, fake_framed)
    assert (layout.num_segments, layout.last_segment_size) == (segments, last)


def test_out_of_range_and_invalid() -> None:
    layout = ArchiveLayout.build(250, 100, fake_framed)
    for method in (layout.segment_offset, layout.segment_length, layout.archive_offset,
                   layout.framed_length):
        with pytest.raises(IndexError):
            method(3)
        with pytest.raises(IndexError):
            method(-1)
    with pytest.raises(IndexError):
        layout.segment_at(250)
    with pytest.raises(ValueError):
        ArchiveLayout.build(-1, 100, fake_framed)
    with pytest.raises(ValueError):
        ArchiveLayout.build(10, 0, fake_framed)
    with pytest.raises(AttributeError):
        layout.size = 3  # type: ignore[misc]
