"""gateway.objects.narrow_reads over in-memory fragment archives (a fake volume client).

What must hold: a short range opens one read per data fragment it needs, each over just
the segments that fragment holds wanted bytes of, and gets the exact bytes; a fragment
that fails its check ends the narrow read (None) and is reported for healing.
"""

from __future__ import annotations

import asyncio

from gateway.objects.narrow_reads import NarrowRange
from tests.unit.test_gateway_shared_reads import SEG, K, setup


def wanted_of(first: int, last: int, size: int) -> dict[int, tuple[int, int]]:
    """Segment-local [lo, hi) of object bytes [first, last] per segment."""
    out = {}
    for segment in range(first // SEG, last // SEG + 1):
        offset = segment * SEG
        out[segment] = (max(first, offset) - offset, min(last + 1, offset + SEG, size) - offset)
    return out


def test_one_read_per_needed_fragment_over_its_own_segments() -> None:
    exchange, manifest, part, data, volumes, codec = setup(4 * SEG)
    quarter = SEG // K
    first, last = SEG + 3 * quarter + 5, 3 * SEG + quarter - 7  # 3 segments, two edges
    wanted = wanted_of(first, last, len(data))

    async def main() -> bytes:
        source = exchange.acquire(manifest, part)
        narrow = NarrowRange(source, wanted)
        try:
            assert NarrowRange.usable(source, len(wanted))
            assert await narrow.open()
            pieces = [await narrow.segment(s) for s in sorted(wanted)]
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
    wanted = wanted_of(10, SEG + 10, len(data))

    async def main() -> bytes | None:
        source = exchange.acquire(manifest, part)
        narrow = NarrowRange(source, wanted)
        try:
            assert await narrow.open()
            return await narrow.segment(0)
        finally:
            narrow.close()
            exchange.release(source)

    assert asyncio.run(main()) is None
    assert len(reported) == 1 and reported[0][3] == 1
