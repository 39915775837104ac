"""The ring: which volumes hold a key's fragments, so every gateway computes the same answer.

Ring data (`RingNode`s, epoch, `to_dict`) is plain and serialisable; `Ring` is the runtime
lookup built from it, with no I/O. Nodes are named by volume id only, never by URL, so a
volume that moves to another host or port moves no data (docs/architecture.md).
"""

from __future__ import annotations

import hashlib
import math
from bisect import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from uhashring import HashRing

# ketama points per node at weight 1 are DEFAULT_VNODES * KETAMA_REPLICAS (uhashring
# hashes each vnode name once and cuts the MD5 digest into KETAMA_REPLICAS points).
DEFAULT_VNODES = 160
KETAMA_REPLICAS = 4
# uhashring's ketama weights are integers; float weights are kept to this resolution.
WEIGHT_SCALE = 1000


@dataclass(frozen=True)
class RingNode:
    """One volume in the ring: `id` names its points, `zone` spreads a key's fragments."""

    id: str
    weight: float = 1.0
    zone: str = ""


def key_hash(key: str) -> int:
    """The ketama hash of a key (little-endian first 4 bytes of MD5), as uhashring computes it."""
    return int.from_bytes(hashlib.md5(key.encode("utf-8")).digest()[:4], "little")


class Ring:
    """Lookup over one epoch of the ring: `placement(key, n)` names the n volumes of a key.

    Immutable after construction. Placements depend only on the node ids, weights and zones
    (and `vnodes`), never on the order the nodes were given in nor on the process.
    """

    __slots__ = ("_epoch", "_vnodes", "_nodes", "_zone", "_points", "_owners", "_cache")

    def __init__(
        self, nodes: Iterable[RingNode], epoch: int = 0, *, vnodes: int = DEFAULT_VNODES
    ) -> None:
        ordered = tuple(sorted(nodes, key=lambda node: node.id))
        _validate(ordered, epoch, vnodes)
        self._epoch = epoch
        self._vnodes = vnodes
        self._nodes = ordered
        self._zone = {node.id: node.zone for node in ordered}
        self._points, self._owners = _ketama_points(ordered, vnodes)
        # (first point index, n) -> placement; a placement depends on nothing else.
        self._cache: dict[tuple[int, int], tuple[str, ...]] = {}

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def vnodes(self) -> int:
        return self._vnodes

    @property
    def nodes(self) -> tuple[RingNode, ...]:
        """The ring's nodes, sorted by id."""
        return self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Ring):
            return NotImplemented
        return (self._epoch, self._vnodes, self._nodes) == (
            other._epoch,
            other._vnodes,
            other._nodes,
        )

    def __hash__(self) -> int:
        return hash((self._epoch, self._vnodes, self._nodes))

    def __repr__(self) -> str:
        ids = ", ".join(node.id for node in self._nodes)
        return f"Ring(epoch={self._epoch}, nodes=[{ids}])"

    def placement(self, key: str, n: int) -> tuple[str, ...]:
        """The n distinct volume ids for `key`; position i holds fragment index i.

        Walks the ring clockwise from the key's hash and takes distinct volumes in order,
        skipping a volume whose zone already has ceil(n / Z) of the n (Z = distinct zones
        in the ring). If the zones cannot satisfy that, the skipped volumes fill the rest in
        ring order. Callers pass `f"{bucket_incarnation}/{object_key}"` as the key.
        """
        if n < 1 or n > len(self._nodes):
            raise ValueError(f"cannot place {n} fragments on {len(self._nodes)} volumes")
        start = bisect(self._points, key_hash(key))
        if start == len(self._points):
            start = 0
        cached = self._cache.get((start, n))
        if cached is None:
            cached = self._walk(start, n)
            self._cache[(start, n)] = cached
        return cached

    def _walk(self, start: int, n: int) -> tuple[str, ...]:
        zone = self._zone
        cap = math.ceil(n / len(set(zone.values())))
        owners = self._owners
        total_nodes = len(self._nodes)
        seen: set[str] = set()
        chosen: list[str] = []
        skipped: list[str] = []
        per_zone: dict[str, int] = {}
        count = len(owners)
        for offset in range(count):
            node_id = owners[(start + offset) % count]
            if node_id in seen:
                continue
            seen.add(node_id)
            node_zone = zone[node_id]
            if per_zone.get(node_zone, 0) < cap:
                per_zone[node_zone] = per_zone.get(node_zone, 0) + 1
                chosen.append(node_id)
                if len(chosen) == n:
                    return tuple(chosen)
            else:
                skipped.append(node_id)
            if len(seen) == total_nodes:
                break
        # Only reached when the zones cannot give every zone at most `cap`.
        chosen.extend(skipped[: n - len(chosen)])
        return tuple(chosen)

    def to_dict(self) -> dict[str, Any]:
        """Serialisable ring data; `Ring.from_dict(ring.to_dict()) == ring`."""
        return {
            "epoch": self._epoch,
            "vnodes": self._vnodes,
            "nodes": [
                {"id": node.id, "weight": node.weight, "zone": node.zone} for node in self._nodes
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Ring:
        """Rebuild a ring from `to_dict()` output; malformed data raises ValueError."""
        try:
            raw_nodes = data["nodes"]
            nodes = [
                RingNode(
                    id=str(raw["id"]),
                    weight=float(raw.get("weight", 1.0)),
                    zone=str(raw.get("zone", "")),
                )
                for raw in raw_nodes
            ]
            epoch = int(data.get("epoch", 0))
            vnodes = int(data.get("vnodes", DEFAULT_VNODES))
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed ring data: {exc!r}") from exc
        return cls(nodes, epoch, vnodes=vnodes)


def _validate(nodes: Sequence[RingNode], epoch: int, vnodes: int) -> None:
    if not nodes:
        raise ValueError("a ring needs at least one volume")
    if epoch < 0:
        raise ValueError(f"ring epoch must not be negative, got {epoch}")
    if vnodes < 1:
        raise ValueError(f"vnodes must be positive, got {vnodes}")
    seen: set[str] = set()
    for node in nodes:
        if not node.id:
            raise ValueError("a ring node needs a non-empty id")
        if node.id in seen:
            raise ValueError(f"duplicate ring node id {node.id!r}")
        seen.add(node.id)
        if not math.isfinite(node.weight) or round(node.weight * WEIGHT_SCALE) < 1:
            raise ValueError(f"ring node {node.id!r} needs a positive weight, got {node.weight}")


def _ketama_points(
    nodes: Sequence[RingNode], vnodes: int
) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """The sorted ketama continuum from uhashring, as parallel (points, owners) tuples."""
    ring = HashRing(
        {
            node.id: {"weight": round(node.weight * WEIGHT_SCALE), "vnodes": vnodes}
            for node in nodes
        },
        hash_fn="ketama",
        replicas=KETAMA_REPLICAS,
    )
    points = ring.get_points()
    if not points:
        raise ValueError("ring weights leave every volume without a point")
    return tuple(point for point, _ in points), tuple(owner for _, owner in points)
