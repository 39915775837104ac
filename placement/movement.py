"""Ring changes move only displaced fragments: volumes that stay in a placement keep their index.

A manifest records which volume holds which fragment index, so a new ring epoch must not
renumber fragments that stay put (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from placement.ring import Ring


@dataclass(frozen=True)
class Move:
    """Fragment `index` of `key` must go from volume `source` to volume `target`."""

    key: str
    index: int
    source: str
    target: str


def stable_placement(previous: Sequence[str | None], new_ring: Ring, key: str) -> tuple[str, ...]:
    """The placement of `key` on `new_ring`, keeping every surviving volume at its index.

    `previous[i]` is the volume that held fragment index i (None where none did). The
    result holds the same volumes as `new_ring.placement(key, len(previous))`; a volume of
    `previous` that is still in it keeps its index, and the displaced indexes (or the None
    ones) take the newly placed volumes in ring order.
    """
    target = new_ring.placement(key, len(previous))
    wanted = set(target)
    result: list[str | None] = [None] * len(previous)
    kept: set[str] = set()
    for index, volume in enumerate(previous):
        if volume is not None and volume in wanted and volume not in kept:
            result[index] = volume
            kept.add(volume)
    newcomers = iter(volume for volume in target if volume not in kept)
    return tuple(volume if volume is not None else next(newcomers) for volume in result)


def ring_diff(old: Ring, new: Ring, keys: Iterable[str], n: int) -> list[Move]:
    """The fragments of `keys` that move when `old` (n per key) becomes `new`.

    Assumes each key was placed by `old.placement(key, n)`; fragments whose volume stays
    in the key's placement are not listed.
    """
    moves: list[Move] = []
    for key in keys:
        before = old.placement(key, n)
        after = stable_placement(before, new, key)
        moves.extend(
            Move(key, index, source, target)
            for index, (source, target) in enumerate(zip(before, after, strict=True))
            if source != target
        )
    return moves
