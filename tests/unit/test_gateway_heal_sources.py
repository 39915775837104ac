"""Which fragments a heal's rebuild reads from: k that verified whole, else every one
with a good segment (gateway/objects/healer.py, `Healer._sources`)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from gateway.objects.healer import Healer

PLACEMENT = ("v0", "v1", "v2", "v3", "v4", "v5")
ARCHIVES = [f"a{i}" for i in range(6)]
LAYOUT = SimpleNamespace(num_segments=3)


def sources(bad: dict[int, set[int]], unreachable: set[str] = frozenset(), k: int = 4
            ) -> list[int]:
    healer = object.__new__(Healer)
    opened: list[str] = []

    async def fake_open(volume_id: str, archive: str, layout, segment: int):  # noqa: ANN001, ANN202
        opened.append(volume_id)
        return None if volume_id in unreachable else f"stream of {archive}"

    healer._open = fake_open  # type: ignore[method-assign]
    streams = asyncio.run(healer._sources(k, LAYOUT, PLACEMENT, ARCHIVES, bad))
    assert all(streams[i] == f"stream of a{i}" for i in streams)
    assert set(opened) >= {PLACEMENT[i] for i in streams}
    return sorted(streams)


def test_k_whole_fragments_are_enough() -> None:
    assert sources({1: {0}}) == [0, 2, 3, 4]
    assert sources({}) == [0, 1, 2, 3]


def test_a_whole_fragment_that_does_not_open_is_replaced_by_the_next() -> None:
    assert sources({1: {0}}, unreachable={"v0"}) == [2, 3, 4, 5]


def test_fewer_than_k_whole_reads_every_fragment_with_a_good_segment() -> None:
    # 0 and 1 damaged in different segments, 2 wholly bad: each segment still has k good.
    assert sources({0: {0}, 1: {1}, 2: {0, 1, 2}}) == [0, 1, 3, 4, 5]
    assert sources({0: {0}, 1: {1}}, unreachable={"v2"}) == [0, 1, 3, 4, 5]
