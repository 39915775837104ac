"""Segmenter: any chunking of a body gives the same segments, all full but the last."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erasure import Segmenter


def cut(data: bytes, points: list[int]) -> list[bytes]:
    bounds = [0, *sorted(p % (len(data) + 1) for p in points), len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


@settings(deadline=None, max_examples=300)
@given(data=st.binary(max_size=3000), points=st.lists(st.integers(0, 3000), max_size=12),
       segment_size=st.integers(1, 700), kinds=st.lists(st.sampled_from([bytes, bytearray,
                                                                          memoryview])))
def test_any_chunking_reassembles(data: bytes, points: list[int], segment_size: int,
                                  kinds: list[type]) -> None:
    segmenter = Segmenter(segment_size)
    segments: list[bytes] = []
    for n, chunk in enumerate(cut(data, points)):
        kind = kinds[n % len(kinds)] if kinds else bytes
        got = segmenter.feed(kind(chunk))
        assert all(type(s) is bytes and len(s) == segment_size for s in got)
        segments += got
        assert segmenter.buffered == (sum(map(len, cut(data, points)[:n + 1]))
                                      - len(segments) * segment_size)
        assert segmenter.buffered < segment_size
    tail = segmenter.finish()
    if tail is not None:
        assert 1 <= len(tail) < segment_size
        segments.append(tail)
    assert b"".join(segments) == data
    assert len(segments) == -(-len(data) // segment_size)
    assert (tail is None) == (len(data) % segment_size == 0)
    assert segmenter.buffered == 0 and segmenter.finish() is None


def test_worked_example() -> None:
    segmenter = Segmenter(4)
    assert segmenter.feed(b"ab") == []
    assert segmenter.feed(b"cdefghij") == [b"abcd", b"efgh"]
    assert segmenter.feed(b"") == []
    assert segmenter.feed(b"kl") == [b"ijkl"]
    assert segmenter.finish() is None
    assert segmenter.feed(b"xyz") == []
    assert segmenter.finish() == b"xyz"  # and it is ready for the next body


def test_a_chunk_of_exactly_one_segment_is_not_copied() -> None:
    chunk = bytes(range(8))
    assert Segmenter(8).feed(chunk)[0] is chunk


def test_empty_body_has_no_segments() -> None:
    segmenter = Segmenter(10)
    assert segmenter.feed(b"") == []
    assert segmenter.finish() is None


def test_segment_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Segmenter(0)
