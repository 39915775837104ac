"""gateway.objects.read_ahead and range_shape, over a real codec and fake volumes.

What must hold: a plan names exactly the reads the reader would open first (narrow runs,
or k streams over the whole segments), and nothing for ranges it does not cover or
holders that are suspect; opened reads are handed out only after the read rule's
decision names the hinted version with the same archives, each exactly once, and the
rest are closed; a shared part source uses adopted reads for its segment.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from types import SimpleNamespace

from gateway.objects.range_shape import RangeShape
from gateway.objects.read_ahead import READ_AHEAD_SEGMENTS, ReadAhead, ReadHints
from tests.unit.test_gateway_shared_reads import SEG, K, Stream, setup


def hinted(size: int, suspect: frozenset[str] = frozenset()):
    exchange, manifest, part, data, volumes, codec = setup(size)
    hints = ReadHints()
    hints.remember(manifest)
    cluster = SimpleNamespace(read_hints=hints, codec_for=lambda params: codec,
                              suspect=lambda vid: vid in suspect, segments=exchange)
    return cluster, exchange, manifest, part, data, volumes, codec


def test_range_shape_wants_what_the_range_covers_of_each_segment() -> None:
    exchange, manifest, part, data, volumes, codec = setup(9 * SEG + 123)
    layout = codec.layout(part.size)
    rng = random.Random(7)
    for _ in range(300):
        start = rng.randrange(part.size)
        end = rng.randrange(start, part.size)
        shape = RangeShape(layout, start, end)
        got = b"".join(data[layout.segment_offset(s):][slice(*shape.wanted(s))]
                       for s in shape.segments)
        assert got == data[start:end + 1]
        assert shape.partial == (start % SEG != 0
                                 or ((end + 1) % SEG != 0 and end + 1 != part.size))


def test_a_narrow_range_plans_one_read_per_needed_fragment() -> None:
    cluster, exchange, manifest, part, data, volumes, codec = hinted(8 * SEG)
    quarter = SEG // K
    first, last = SEG + quarter + 3, SEG + 2 * quarter - 3  # inside fragment 1 of segment 1
    ahead = ReadAhead.plan(cluster, "inc", "key", f"bytes={first}-{last}")
    assert ahead is not None
    shape = RangeShape(codec.layout(part.size), first, last)
    assert shape.narrow
    assert {r.index: (r.start, r.end) for r in ahead.by_volume.values()} == \
        shape.narrow_reads(codec) == {1: (shape.span.archive_start, shape.span.archive_end)}
    assert set(ahead.by_volume) == {part.placement[1]}


def test_whole_segments_plan_k_streams_and_long_or_odd_ranges_none() -> None:
    cluster, exchange, manifest, part, data, volumes, codec = hinted(40 * SEG)
    ahead = ReadAhead.plan(cluster, "inc", "key", f"bytes={2 * SEG}-{10 * SEG - 1}")
    assert ahead is not None
    layout = codec.layout(part.size)
    spans = {(r.index, r.start, r.end) for r in ahead.by_volume.values()}
    end = layout.archive_offset(9) + layout.framed_length(9) - 1
    assert spans == {(i, layout.archive_offset(2), end) for i in range(K)}
    too_long = f"bytes=0-{(READ_AHEAD_SEGMENTS + 1) * SEG - 1}"
    assert ReadAhead.plan(cluster, "inc", "key", too_long) is None
    partial_first = f"bytes=5-{10 * SEG - 1}"  # the reader cuts its first segment
    assert ReadAhead.plan(cluster, "inc", "key", partial_first) is None
    assert ReadAhead.plan(cluster, "inc", "other", "bytes=0-10") is None  # no hint
    assert ReadAhead.plan(cluster, "inc", "key", f"bytes={40 * SEG}-") is None  # 416


def test_no_plan_when_a_data_holder_is_suspect() -> None:
    cluster = hinted(8 * SEG, suspect=frozenset({"v2"}))[0]
    assert ReadAhead.plan(cluster, "inc", "key", "bytes=0-100") is None


def test_hints_keep_archived_versions_only_and_forget_the_oldest() -> None:
    exchange, manifest, part, data, volumes, codec = setup(SEG)
    hints = ReadHints(capacity=2)
    for key in ("a", "b", "c"):
        hints.remember(replace(manifest, key=key))
    assert [hints.get("inc", k) is not None for k in ("a", "b", "c")] == [False, True, True]
    hints.remember(replace(manifest, key="b", deleted=True))
    assert hints.get("inc", "b") is None
    inline = replace(manifest, key="c", parts=(replace(part, inline=True),))
    hints.remember(inline)
    assert hints.get("inc", "c") is None
    by_parts = ReadHints(capacity=10, parts=5)
    for key, parts in (("a", 2), ("b", 2), ("c", 2), ("d", 6)):
        by_parts.remember(replace(manifest, key=key, parts=(part,) * parts))
    assert [by_parts.get("inc", k) is not None for k in "abcd"] == [False, True, True, False]


def opened(ahead: ReadAhead) -> dict[int, Stream]:
    """Pretend every planned read was opened with its `latest` answer."""
    streams = {}
    for read in ahead.by_volume.values():
        streams[read.index] = Stream(b"x" * (read.end - read.start + 1))
        ahead._streams[read.index] = (read, streams[read.index])  # noqa: SLF001
    return streams


def test_reads_are_handed_out_only_for_the_hinted_archives() -> None:
    cluster, exchange, manifest, part, data, volumes, codec = hinted(8 * SEG)
    whole = f"bytes=0-{4 * SEG - 1}"
    read = None
    for decided in (None, replace(manifest, version_id="1" * 32),
                    replace(manifest, parts=(replace(part, archive_tag="other"),)),
                    replace(manifest, deleted=True)):
        ahead = ReadAhead.plan(cluster, "inc", "key", whole)
        assert ahead is not None
        streams = opened(ahead)
        ahead.confirm(decided)
        read = next(iter(ahead.by_volume.values()))
        assert ahead.take(read.index, read.start, read.end) is None
        assert all(s.closed for s in streams.values())
    ahead = ReadAhead.plan(cluster, "inc", "key", whole)
    assert ahead is not None and read is not None
    streams = opened(ahead)
    ahead.confirm(manifest)
    assert ahead.take(read.index, read.start, read.end - 1) is None  # not that span
    assert ahead.take(read.index, read.start, read.end) is streams[read.index]
    assert ahead.take(read.index, read.start, read.end) is None  # once
    ahead.close()
    assert not streams[read.index].closed  # the taker's now
    assert all(s.closed for i, s in streams.items() if i != read.index)


def test_a_part_source_reads_its_segment_from_adopted_streams() -> None:
    exchange, manifest, part, data, volumes, codec = setup(6 * SEG)
    layout = codec.layout(part.size)
    start, end = layout.archive_offset(2), layout.archive_offset(4) - 1

    async def main() -> None:
        source = exchange.acquire(manifest, part)
        streams = {i: Stream(volumes.archives[part.archive_id("inc", "key", i)]
                             [start:end + 1]) for i in range(K)}
        source.adopt(2, end, streams)
        assert await source.segment(2, end) == data[2 * SEG:3 * SEG]
        assert await source.segment(3, end) == data[3 * SEG:4 * SEG]
        assert volumes.opened == []  # no read of its own
        other = exchange.acquire(manifest, part)  # a segment being kept: adopted closed
        assert await source.segment(4, layout.archive_size - 1) == data[4 * SEG:5 * SEG]
        late = {0: Stream(b"")}
        source.adopt(4, end, late)
        assert late[0].closed
        exchange.release(other)
        exchange.release(source)

    asyncio.run(main())


def test_a_read_arriving_after_the_get_ended_is_closed() -> None:
    cluster, exchange, manifest, part, data, volumes, codec = hinted(8 * SEG)
    ahead = ReadAhead.plan(cluster, "inc", "key", "bytes=0-100")
    assert ahead is not None
    late = Stream(b"x")

    async def latest_and_read(*args: object) -> tuple[list, Stream]:
        return [], late

    cluster.volumes = SimpleNamespace(latest_and_read=latest_and_read)
    ahead.close()
    asyncio.run(ahead.latest(cluster, next(iter(ahead.by_volume)), False))
    assert late.closed


def test_an_adopted_cursor_where_one_already_stands_is_closed() -> None:
    exchange, manifest, part, data, volumes, codec = setup(6 * SEG)
    layout = codec.layout(part.size)
    end = layout.archive_size - 1

    async def main() -> None:
        source = exchange.acquire(manifest, part)
        await source.segment(0, end)  # leaves its cursor idle at segment 1
        second = {0: Stream(b"")}
        source.adopt(1, end, second)
        assert second[0].closed
        exchange.release(source)

    asyncio.run(main())


def test_whole_segments_another_get_reads_are_not_read_ahead() -> None:
    cluster, exchange, manifest, part, data, volumes, codec = hinted(8 * SEG)
    whole = f"bytes={2 * SEG}-{4 * SEG - 1}"
    first = ReadAhead.plan(cluster, "inc", "key", whole)
    assert first is not None
    assert ReadAhead.plan(cluster, "inc", "key", whole) is None  # planned by the first
    assert ReadAhead.plan(cluster, "inc", "key", f"bytes={4 * SEG}-{6 * SEG - 1}")
    assert ReadAhead.plan(cluster, "inc", "key", "bytes=5-100") is not None  # narrow: own
    first.close()
    layout = codec.layout(part.size)

    async def main() -> None:
        source = exchange.acquire(manifest, part)
        await source.segment(1, layout.archive_size - 1)  # a cursor now waits at 2
        assert ReadAhead.plan(cluster, "inc", "key", whole) is None
        exchange.release(source)

    asyncio.run(main())
    assert ReadAhead.plan(cluster, "inc", "key", whole) is not None  # nobody reads it now
