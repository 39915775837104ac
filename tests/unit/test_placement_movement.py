"""Ring changes: surviving volumes keep their fragment index and little data moves."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from placement import Move, Ring, RingNode, ring_diff, stable_placement

KEYS = [f"bkt-1/logs/{i:06d}" for i in range(20_000)]


def volumes(count: int, zones: int = 0) -> list[RingNode]:
    return [
        RingNode(f"vol-{i:02d}", zone=f"zone-{i % zones}" if zones else "") for i in range(count)
    ]


def test_unchanged_ring_keeps_the_placement() -> None:
    ring = Ring(volumes(12))
    for key in KEYS[:1000]:
        placed = ring.placement(key, 6)
        assert stable_placement(placed, ring, key) == placed
    assert ring_diff(ring, Ring(volumes(12), epoch=1), KEYS[:1000], 6) == []


def test_missing_indexes_are_filled_and_survivors_stay() -> None:
    ring = Ring(volumes(12))
    key = KEYS[0]
    placed = ring.placement(key, 6)
    previous = [placed[0], None, placed[2], "vol-gone", placed[4], None]
    result = stable_placement(previous, ring, key)
    assert set(result) == set(placed)
    assert (result[0], result[2], result[4]) == (placed[0], placed[2], placed[4])


def test_indexes_are_reassigned_in_ring_order() -> None:
    ring = Ring(volumes(12))
    key = KEYS[1]
    placed = ring.placement(key, 6)
    # Survivors at new positions stay where they were; the free indexes take the rest of
    # the new placement in its own order.
    previous = [None, None, placed[0], None, placed[1], None]
    rest = [v for v in placed if v not in previous]
    assert stable_placement(previous, ring, key) == (
        rest[0],
        rest[1],
        placed[0],
        rest[2],
        placed[1],
        rest[3],
    )


@settings(max_examples=40, deadline=None)
@given(
    kept=st.lists(st.integers(min_value=0, max_value=15), unique=True, min_size=4, max_size=16),
    key=st.text(max_size=20),
)
def test_survivors_keep_their_index(kept: list[int], key: str) -> None:
    old = Ring([RingNode(f"v{i}") for i in range(16)], vnodes=16)
    new = Ring([RingNode(f"v{i}") for i in kept] + [RingNode("fresh")], epoch=1, vnodes=16)
    previous = old.placement(key, 4)
    result = stable_placement(previous, new, key)
    assert set(result) == set(new.placement(key, 4))
    for index, volume in enumerate(previous):
        if volume in result:
            assert result[index] == volume


@pytest.mark.parametrize("zones", [0, 3])
def test_adding_one_volume_to_twelve_moves_about_one_thirteenth(zones: int) -> None:
    old = Ring(volumes(12, zones))
    new = Ring(volumes(13, zones), epoch=1)
    moves = ring_diff(old, new, KEYS, 6)
    fraction = len(moves) / (6 * len(KEYS))
    assert 0.6 / 13 <= fraction <= 1.4 / 13
    assert {move.target for move in moves} == {"vol-12"}
    # At most one fragment of a key moves: only the new volume enters the placement.
    assert len({move.key for move in moves}) == len(moves)


@pytest.mark.parametrize("zones", [0, 3])
def test_removing_a_volume_moves_only_what_it_held(zones: int) -> None:
    old = Ring(volumes(12, zones))
    new = Ring([n for n in volumes(12, zones) if n.id != "vol-05"], epoch=1)
    moves = ring_diff(old, new, KEYS, 6)
    held = sum("vol-05" in old.placement(key, 6) for key in KEYS)
    assert len(moves) == held
    assert {move.source for move in moves} == {"vol-05"}
    for move in moves:
        assert old.placement(move.key, 6)[move.index] == "vol-05"
        assert move.target not in old.placement(move.key, 6)


def test_moves_are_frozen_data() -> None:
    move = Move("bkt-1/k", 2, "vol-01", "vol-12")
    with pytest.raises(dataclasses.FrozenInstanceError):
        move.index = 3  # type: ignore[misc]
    assert move == Move("bkt-1/k", 2, "vol-01", "vol-12")
