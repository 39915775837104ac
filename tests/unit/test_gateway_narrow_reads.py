"""gateway.objects.narrow_reads over in-memory fragment archives (a fake volume client).

What must hold: a short range opens one read per data fragment it needs, each over just
the segments that fragment holds wanted bytes of, and gets the exact bytes; a fragment
that fails its check ends the narrow read (None) and is reported for healing.
"""

from __future__ import annotations

import asyncio

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
