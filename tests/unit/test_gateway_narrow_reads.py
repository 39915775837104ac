"""gateway.objects.narrow_reads over in-memory fragment archives (a fake volume client).

What must hold: a short range opens one read per data fragment it needs, each over just
the segments that fragment holds wanted bytes of, and gets the exact bytes; a fragment
that fails its check ends the narrow read (None) and is reported for healing.
"""

from __future__ import annotations

import asyncio

from erasure import SLICE_OVERHEAD
from gateway.objects.narrow_reads import NarrowRange
from gateway.objects.range_shape import RangeShape
from tests.unit.test_gateway_shared_reads import SEG, K, setup


def test_one_read_per_needed_fragment_over_its_own_segments() -> None:
    exchange, manifest, part, data, volumes, codec = setup(4 * SEG)
    quarter = SEG // K
    first, last = SEG + 3 * quarter + 5, 3 * SEG + quarter - 7  # 3 segments, two edges

    async def main() -> bytes:
        source = exchange.acquire(manifest, part)
        shape = RangeShape(source.layout, first, last)
        narrow = NarrowRange(source, shape)
        try:
            assert NarrowRange.usable(source, shape)
            assert await narrow.open()
            pieces = [await narrow.segment(s) for s in shape.segments]
            assert all(p is not None for p in pieces)
            return b"".join(p for p in pieces if p is not None)
        finally:
            narrow.close()
            exchange.release(source)

    assert asyncio.run(main()) == data[first:last + 1]
    framed = codec.layout(part.size).framed_fragment_size
    # Segment 1 needs fragment 3, segment 2 all four, segment 3 fragment 0.
    assert len(volumes.opened) == K
    assert volumes.bytes_asked == (1 + 4 + 1) * framed


def test_a_rotten_fragment_ends_the_narrow_read_and_is_reported() -> None:
    exchange, manifest, part, data, volumes, codec = setup(2 * SEG)
    reported = []
    exchange.cluster.report_corrupt = lambda *args: reported.append(args)
    archive = part.archive_id("inc", "key", 1)
    spoiled = bytearray(volumes.archives[archive])
    spoiled[200] ^= 0xFF
    volumes.archives[archive] = bytes(spoiled)

    async def main() -> bytes | None:
        source = exchange.acquire(manifest, part)
        narrow = NarrowRange(source, RangeShape(source.layout, 10, SEG + 10))
        try:
            assert await narrow.open()
            return await narrow.segment(0)
        finally:
            narrow.close()
            exchange.release(source)

    assert asyncio.run(main()) is None
    assert len(reported) == 1 and reported[0][3] == 1


def _read_narrow(exchange, manifest, part, first: int, last: int) -> bytes | None:
    async def main() -> bytes | None:
        source = exchange.acquire(manifest, part)
        shape = RangeShape(source.layout, first, last)
        narrow = NarrowRange(source, shape)
        try:
            assert await narrow.open()
            pieces = [await narrow.segment(s) for s in shape.segments]
            if any(p is None for p in pieces):
                return None
            return b"".join(p for p in pieces if p is not None)
        finally:
            narrow.close()
            exchange.release(source)

    return asyncio.run(main())


def test_a_seeded_part_sends_only_the_wanted_slices() -> None:
    exchange, manifest, part, data, volumes, codec = setup(4 * SEG, seeded=True)
    quarter = SEG // K
    first, last = SEG + 3 * quarter + 5, 3 * SEG + quarter - 7
    assert _read_narrow(exchange, manifest, part, first, last) == data[first:last + 1]
    # The same six fragments as a whole-fragment read, but only the wanted bytes of
    # each, plus two CRCs per fragment.
    assert volumes.sent == (last - first + 1) + 6 * SLICE_OVERHEAD
    volumes.sent = 0
    assert _read_narrow(exchange, manifest, part, 3, 10) == data[3:11]
    assert volumes.sent == 8 + SLICE_OVERHEAD  # of a fragment of SEG / K bytes and more


def test_rot_outside_the_slice_still_fails_the_fragment() -> None:
    """The volume checks the whole fragment: a bad byte it does not send still counts."""
    exchange, manifest, part, data, volumes, codec = setup(2 * SEG, seeded=True)
    reported = []
    exchange.cluster.report_corrupt = lambda *args: reported.append(args)
    archive = part.archive_id("inc", "key", 0)
    spoiled = bytearray(volumes.archives[archive])
    spoiled[len(spoiled) // 2 - 10] ^= 0x01  # segment 0's fragment 0, past byte 10
    volumes.archives[archive] = bytes(spoiled)
    assert _read_narrow(exchange, manifest, part, 3, 10) is None
    assert len(reported) == 1 and reported[0][3] == 0


def test_a_byte_changed_on_the_way_fails_the_slice() -> None:
    exchange, manifest, part, data, volumes, codec = setup(2 * SEG, seeded=True)
    reported = []
    exchange.cluster.report_corrupt = lambda *args: reported.append(args)
    opened = volumes.open_archive

    async def flipping(*args, **kwargs):
        stream = await opened(*args, **kwargs)
        body = bytearray(stream.data)
        body[SLICE_OVERHEAD] ^= 0x80
        stream.data = bytes(body)
        return stream

    volumes.open_archive = flipping
    assert _read_narrow(exchange, manifest, part, 3, 10) is None
    assert len(reported) == 1


def test_a_part_written_before_seeds_reads_whole_fragments() -> None:
    exchange, manifest, part, data, volumes, codec = setup(2 * SEG)
    assert _read_narrow(exchange, manifest, part, 3, 10) == data[3:11]
    assert volumes.sent == volumes.bytes_asked == codec.layout(part.size).framed_fragment_size
