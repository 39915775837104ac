"""Which fragments a heal's rebuild reads from, and what it stages: k that verified
whole, else every one with a good segment; every rebuilt archive byte-identical to the
one written (gateway/objects/fragment_rebuild.py, `_sources` and `rebuild_fragments`)."""

from __future__ import annotations

import asyncio
import os
from types import SimpleNamespace

import pytest

from erasure import Codec, cut_slice
from gateway.objects import fragment_rebuild
from gateway.objects.fragment_checks import verify_fragments
from gateway.objects.fragment_rebuild import rebuild_fragments
from gateway.objects.volume_errors import VolumeUnavailable
from shardgate.config import parse_config
from shardgate.manifest import PartManifest
from tests.unit.test_core_config import raw_config
from tests.unit.test_gateway_shared_reads import Stream

PLACEMENT = ("v0", "v1", "v2", "v3", "v4", "v5")
ARCHIVES = [f"a{i}" for i in range(6)]
SEG, K, M = 4096, 4, 2


def sources(bad: dict[int, set[int]], unreachable: frozenset[str] = frozenset(),
            k: int = 4) -> tuple[list[int], list[str]]:
    """The indexes streamed from, and the volumes asked (in order)."""
    opened: list[str] = []

    class Volumes:
        async def open_archive(self, volume_id: str, archive: str, start: int,
                               end: int) -> str:
            opened.append(volume_id)
            if volume_id in unreachable:
                raise VolumeUnavailable(volume_id, "down")
            return f"stream of {archive}"

    cluster = SimpleNamespace(volumes=Volumes())
    layout = SimpleNamespace(num_segments=3, archive_size=100, archive_offset=lambda s: 0)
    bad = {i: bad.get(i, set()) for i in range(len(PLACEMENT))}  # as verify_fragments
    streams = asyncio.run(fragment_rebuild._sources(cluster, k, layout, PLACEMENT, ARCHIVES,
                                                    bad))
    assert all(streams[i] == f"stream of a{i}" for i in streams)
    return sorted(streams), opened


def test_k_whole_fragments_are_enough_and_no_more_are_opened() -> None:
    assert sources({1: {0}}) == ([0, 2, 3, 4], ["v0", "v2", "v3", "v4"])
    assert sources({}) == ([0, 1, 2, 3], ["v0", "v1", "v2", "v3"])


def test_a_whole_fragment_that_does_not_open_is_replaced_by_the_next() -> None:
    assert sources({1: {0}}, frozenset({"v0"})) == ([2, 3, 4, 5],
                                                     ["v0", "v2", "v3", "v4", "v5"])


def test_fewer_than_k_whole_reads_every_fragment_with_a_good_segment() -> None:
    # 0 and 1 damaged in different segments, 2 wholly bad: each segment still has k good.
    assert sources({0: {0}, 1: {1}, 2: {0, 1, 2}})[0] == [0, 1, 3, 4, 5]
    assert sources({0: {0}, 1: {1}}, frozenset({"v2"}))[0] == [0, 1, 3, 4, 5]


class Volumes:
    """Archives in memory: sliced and plain reads as a volume answers them, stages kept."""

    def __init__(self, archives: dict[str, bytes]) -> None:
        self.archives = archives
        self.down: set[str] = set()
        self.streams: list[Stream] = []
        self.staged: dict[str, bytes] = {}

    async def open_archive(self, volume_id: str, archive_id: str, start: int, end: int,
                           slices=None) -> Stream:  # noqa: ANN001
        if volume_id in self.down:
            raise VolumeUnavailable(volume_id, "down")
        data = self.archives[archive_id]
        if slices is None:
            body = data[start:end + 1]
        else:
            pieces, at = [], start
            for n, lo, hi in slices.frames:
                pieces.append(cut_slice(data[at:at + n], lo, hi, slices.seed)[0])
                at += n
            body = b"".join(pieces)
        self.streams.append(Stream(body))
        return self.streams[-1]

    async def stage(self, volume_id: str, stage_id: str, body, size: int,  # noqa: ANN001
                    inline: bool = False, around_cache: bool = False) -> None:
        data = b"".join([chunk async for chunk in body])
        assert len(data) == size
        self.staged[volume_id] = data

    async def abort_stage(self, volume_id: str, stage_id: str) -> None:
        raise AssertionError("nothing fails here")


def flipped(framed: bytes, codec: Codec, size: int, segment: int) -> bytes:
    at = codec.layout(size).archive_offset(segment) + 20
    return framed[:at] + bytes([framed[at] ^ 0xFF]) + framed[at + 1:]


@pytest.mark.parametrize("seeded", [False, True])
@pytest.mark.parametrize("rot, down", [
    ({1: 1}, ()),                  # a partly damaged target, k whole: rebuilt whole
    ({0: 0, 1: 1, 2: 2}, ()),      # three damaged: per segment from any k good
    ({1: 0, 2: 2}, ("v3",)),       # a whole source that does not open: damaged ones too
    ({4: 0, 5: 2}, ()),            # two parity targets
])
def test_rebuilt_archives_are_the_ones_written(seeded: bool, rot: dict[int, int],
                                               down: tuple[str, ...]) -> None:
    codec = Codec(K, M, "isa_l_rs_vand", SEG)
    size = 3 * SEG - 100
    data = os.urandom(size)
    part = PartManifest(1, size, "etag", "tag", PLACEMENT, seeded=seeded)
    seeds = part.seeds("inc", "key") or {}
    framed = [b"".join(codec.encode_segment(data[s:s + SEG],
                                            list(seeds.values()) if seeds else None)[i]
                       for s in range(0, size, SEG)) for i in range(K + M)]
    archives = [part.archive_id("inc", "key", i) for i in range(K + M)]
    stored = [flipped(f, codec, size, rot[i]) if i in rot else f
              for i, f in enumerate(framed)]
    volumes = Volumes(dict(zip(archives, stored, strict=True)))
    cluster = SimpleNamespace(volumes=volumes, config=parse_config(raw_config()))
    layout = codec.layout(size)

    async def main() -> list[int]:
        bad = await verify_fragments(volumes, codec, layout, PLACEMENT, archives, [],
                                     seeds)
        volumes.down |= set(down)  # down after the check, before the rebuild opens
        rebuild = sorted(i for i, segments in bad.items() if segments)
        await rebuild_fragments(cluster, codec, layout, PLACEMENT, archives, bad, rebuild,
                                seeds, False)
        return rebuild

    assert asyncio.run(main()) == sorted(rot)
    assert {v: volumes.staged[v] for v in volumes.staged} == {
        PLACEMENT[i]: framed[i] for i in rot}
    assert all(stream.closed for stream in volumes.streams)
