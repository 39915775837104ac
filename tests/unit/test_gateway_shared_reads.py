"""gateway.objects.shared_reads over in-memory fragment archives (a fake volume client).

What must hold: concurrent reads of one segment fetch it once; a segment is kept only
while another read of its part runs, and forgotten when the last one ends; the byte
budget bounds what is kept; cut() reads only the data fragments a range touches.
"""

from __future__ import annotations

import asyncio
import os
from types import SimpleNamespace

from erasure import Codec, SliceSpec, cut_slice
from gateway.objects.shared_reads import SegmentExchange
from shardgate.manifest import ObjectManifest, PartManifest

SEG = 4096
K, M = 4, 2


class Stream:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.closed = False

    async def read_exactly(self, n: int) -> bytes:
        await asyncio.sleep(0)
        chunk, self.data = self.data[:n], self.data[n:]
        assert len(chunk) == n
        return chunk

    def close(self) -> None:
        self.closed = True


class Volumes:
    """Serves each archive from memory and counts the bytes each read asked for."""

    def __init__(self, archives: dict[str, bytes]) -> None:
        self.archives = archives
        self.opened: list[tuple[str, int, int]] = []
        self.sent = 0  # bytes the streams were given (slices, or whole ranges)

    async def open_archive(self, volume_id: str, archive_id: str, start: int,
                           end: int, slices: SliceSpec | None = None) -> Stream:
        self.opened.append((archive_id, start, end))
        data = self.archives[archive_id]
        if slices is None:
            body = data[start:end + 1]
        else:  # as a volume answers a sliced read (volume_server/archives.py)
            pieces, at = [], start
            for n, lo, hi in slices.frames:
                pieces.append(cut_slice(data[at:at + n], lo, hi, slices.seed)[0])
                at += n
            assert at == end + 1
            body = b"".join(pieces)
        self.sent += len(body)
        return Stream(body)

    @property
    def bytes_asked(self) -> int:
        return sum(end - start + 1 for _, start, end in self.opened)


def setup(size: int, budget: int = 1 << 20, seeded: bool = False):
    codec = Codec(K, M, "isa_l_rs_vand", SEG)
    data = os.urandom(size)
    placement = tuple(f"v{i}" for i in range(K + M))
    part = PartManifest(1, size, "etag", "tag", placement, seeded=seeded)
    manifest = ObjectManifest("b", "inc", "key", "0" * 32, 0.0, "alice", size=size,
                              parts=(part,))
    seeds = part.seeds("inc", "key")
    framed = [b"".join(codec.encode_segment(data[s:s + SEG],
                                            list(seeds.values()) if seeds else None)[i]
                       for s in range(0, size, SEG)) for i in range(K + M)]
    archives = {part.archive_id("inc", "key", i): framed[i] for i in range(K + M)}
    volumes = Volumes(archives)
    cluster = SimpleNamespace(volumes=volumes, codec_for=lambda params: codec,
                              suspect=lambda vid: False,
                              report_corrupt=lambda *args: None)
    exchange = SegmentExchange(cluster, budget)  # type: ignore[arg-type]
    return exchange, manifest, part, data, volumes, codec


def test_concurrent_reads_of_a_segment_fetch_it_once() -> None:
    exchange, manifest, part, data, volumes, codec = setup(3 * SEG)
    end = codec.layout(part.size).archive_size - 1

    async def main() -> list[bytes]:
        sources = [exchange.acquire(manifest, part) for _ in range(10)]
        got = await asyncio.gather(*(s.segment(1, end) for s in sources))
        for s in sources:
            exchange.release(s)
        return got

    got = asyncio.run(main())
    assert all(g == data[SEG:2 * SEG] for g in got)
    assert len(volumes.opened) == K  # one stream per data fragment, for all ten


def test_kept_only_while_another_read_runs() -> None:
    exchange, manifest, part, data, volumes, codec = setup(3 * SEG)
    end = codec.layout(part.size).archive_size - 1

    async def main() -> None:
        alone = exchange.acquire(manifest, part)
        assert await alone.segment(0, end) == data[:SEG]
        assert exchange.recent(alone.key, 0) is None  # nobody else wanted it
        other = exchange.acquire(manifest, part)
        assert await alone.segment(1, end) == data[SEG:2 * SEG]
        assert exchange.recent(alone.key, 1) == data[SEG:2 * SEG]
        asked = volumes.bytes_asked
        assert await other.segment(1, end) == data[SEG:2 * SEG]
        assert volumes.bytes_asked == asked  # from the kept copy
        exchange.release(alone)
        exchange.release(other)
        assert exchange.recent(alone.key, 1) is None  # forgotten with the last read

    asyncio.run(main())


def test_the_budget_bounds_what_is_kept() -> None:
    exchange, manifest, part, data, volumes, codec = setup(6 * SEG, budget=2 * SEG)
    end = codec.layout(part.size).archive_size - 1

    async def main() -> None:
        first, second = exchange.acquire(manifest, part), exchange.acquire(manifest, part)
        for segment in range(6):
            await first.segment(segment, end)
        kept = [s for s in range(6) if exchange.recent(first.key, s) is not None]
        assert kept == [4, 5]
        exchange.release(first)
        exchange.release(second)

    asyncio.run(main())


def test_cut_reads_only_the_fragments_a_range_touches() -> None:
    exchange, manifest, part, data, volumes, codec = setup(2 * SEG)

    async def main() -> bytes | None:
        source = exchange.acquire(manifest, part)
        try:
            return await source.cut(1, SEG // 4 + 3, SEG // 4 + 40)
        finally:
            exchange.release(source)

    assert asyncio.run(main()) == data[SEG + SEG // 4 + 3:SEG + SEG // 4 + 40]
    assert [archive for archive, _, _ in volumes.opened] == [
        part.archive_id("inc", "key", 1)]


def test_readers_at_different_places_keep_their_streams() -> None:
    """Eight GETs of one part, each over its own two segments, interleaved: each opens
    its fragments once (no GET's parked streams are closed under it by the others)."""
    exchange, manifest, part, data, volumes, codec = setup(16 * SEG)
    layout = codec.layout(part.size)

    async def one(n: int) -> bytes:
        source = exchange.acquire(manifest, part)
        end = layout.archive_offset(2 * n + 1) + layout.framed_length(2 * n + 1) - 1
        try:
            got = b""
            for segment in (2 * n, 2 * n + 1):
                got += await source.segment(segment, end)
                await asyncio.sleep(0.001 * n)
            return got
        finally:
            exchange.release(source)

    async def main() -> list[bytes]:
        return await asyncio.gather(*(one(n) for n in range(8)))

    got = asyncio.run(main())
    assert got == [data[2 * n * SEG:(2 * n + 2) * SEG] for n in range(8)]
    assert len(volumes.opened) == 8 * K
