"""Placement: which volumes hold which fragment of a key, as pure functions of the ring."""

from placement.movement import Move, ring_diff, stable_placement
from placement.ring import Ring, RingNode

__all__ = ["Move", "Ring", "RingNode", "ring_diff", "stable_placement"]
