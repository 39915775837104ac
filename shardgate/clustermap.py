"""The cluster map: which volumes exist, in which state, and the ring epoch (pure).

One JSON document in the map store holds it (docs/cluster-map.md). Every change is a
new document written by compare-and-set on the previous one's revision, so two admins
can never both change membership from the same starting point. The EC policy is part of
the document and never changes: objects are found by it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from placement import Ring, RingNode
from shardgate.config import ClusterConfig, ErasureSpec

# joining: in the ring of the newest epoch, receiving moved fragments; active: in the
# ring; draining: out of the newest ring, its fragments moving off (it still serves
# reads); gone: removed, kept in the document so its id is never reused.
STATES = ("joining", "active", "draining", "gone")
IN_RING = ("joining", "active")
SERVING = ("joining", "active", "draining")


class MapRefused(ValueError):
    """A membership change that would leave the cluster unsafe, or clash with another."""


@dataclass(frozen=True)
class MapVolume:
    id: str
    url: str
    weight: float = 1.0
    zone: str = ""
    state: str = "active"

    @property
    def node(self) -> RingNode:
        return RingNode(self.id, self.weight, self.zone)


@dataclass(frozen=True)
class ClusterMap:
    """`previous` is the ring of the epoch before, kept while fragments move to this
    epoch's placement: reads look at both until the move is finished."""

    epoch: int
    erasure: ErasureSpec
    volumes: tuple[MapVolume, ...]
    previous: tuple[RingNode, ...] | None = None

    @property
    def moving(self) -> bool:
        return self.previous is not None

    def volume(self, volume_id: str) -> MapVolume | None:
        return next((v for v in self.volumes if v.id == volume_id), None)

    def ids(self, states: tuple[str, ...] = SERVING) -> list[str]:
        return [v.id for v in self.volumes if v.state in states]

    def placed_ids(self) -> list[str]:
        """Serving volumes some key's placement can name: the ring's, and the previous
        ring's while a move lasts. Once a drain's move has finished the drained volume
        holds nothing that counts, and what it kept while down through the drain (an
        ended upload, an old version) must not show in a listing."""
        named = {v.id for v in self.volumes if v.state in IN_RING}
        named |= {node.id for node in self.previous or ()}
        return [vid for vid in self.ids() if vid in named]

    def ring(self) -> Ring:
        return Ring([v.node for v in self.volumes if v.state in IN_RING], self.epoch)

    def previous_ring(self) -> Ring | None:
        return None if self.previous is None else Ring(self.previous, self.epoch - 1)

    def urls(self) -> dict[str, str]:
        return {v.id: v.url for v in self.volumes if v.state in SERVING}

    def to_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "erasure": asdict(self.erasure),
                "volumes": [asdict(v) for v in self.volumes],
                "previous": None if self.previous is None else [
                    {"id": n.id, "weight": n.weight, "zone": n.zone} for n in self.previous]}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ClusterMap:
        try:
            previous = raw.get("previous")
            return cls(epoch=int(raw["epoch"]), erasure=ErasureSpec(**raw["erasure"]),
                       volumes=tuple(MapVolume(**v) for v in raw["volumes"]),
                       previous=None if previous is None else tuple(
                           RingNode(n["id"], float(n["weight"]), n["zone"]) for n in previous))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed cluster map: {exc!r}") from exc


def seed_map(config: ClusterConfig) -> ClusterMap:
    """The first map of a cluster, from its cluster file: every listed volume active."""
    return ClusterMap(epoch=1, erasure=config.erasure, volumes=tuple(
        MapVolume(v.id, v.url, v.weight, v.zone) for v in config.volumes))


def _next_epoch(current: ClusterMap, volumes: tuple[MapVolume, ...]) -> ClusterMap:
    if current.moving:
        raise MapRefused(f"epoch {current.epoch} is still moving fragments; wait for "
                         "`shardgate admin rebalance status --wait`, then try again")
    return replace(current, epoch=current.epoch + 1, volumes=volumes,
                   previous=tuple(v.node for v in current.volumes if v.state in IN_RING))


def _check_enough(current: ClusterMap, volumes: tuple[MapVolume, ...], doing: str) -> None:
    width = current.erasure.k + current.erasure.m
    left = [v for v in volumes if v.state in IN_RING]
    if len(left) < width:
        raise MapRefused(f"{doing} would leave {len(left)} volumes in the ring; "
                         f"k+m = {width} needs at least that many")
    zones = {v.zone for v in current.volumes if v.state in IN_RING and v.zone}
    left_zones = {v.zone for v in left if v.zone}
    if zones and len(left_zones) < min(len(zones), width):
        raise MapRefused(f"{doing} would leave {len(left_zones)} zones of {len(zones)}")


def add_volume(current: ClusterMap, volume_id: str, url: str, weight: float = 1.0,
               zone: str = "") -> ClusterMap:
    """A new epoch whose ring has the volume (joining until its fragments have moved)."""
    if not volume_id or "/" in volume_id:
        raise MapRefused(f"volume id {volume_id!r} must be non-empty and hold no '/'")
    if current.volume(volume_id) is not None:
        raise MapRefused(f"volume {volume_id} is already in the map "
                         f"({current.volume(volume_id).state})")
    if weight <= 0:
        raise MapRefused("a volume's weight must be positive")
    added = MapVolume(volume_id, url, weight, zone, "joining")
    return _next_epoch(current, (*current.volumes, added))


def drain_volume(current: ClusterMap, volume_id: str) -> ClusterMap:
    """A new epoch whose ring lacks the volume; its fragments move off, it keeps serving."""
    volume = current.volume(volume_id)
    if volume is None or volume.state not in IN_RING:
        raise MapRefused(f"volume {volume_id} is not in the ring "
                         f"({volume.state if volume else 'unknown'})")
    volumes = tuple(replace(v, state="draining") if v.id == volume_id else v
                    for v in current.volumes)
    _check_enough(current, volumes, f"draining {volume_id}")
    return _next_epoch(current, volumes)


def remove_volume(current: ClusterMap, volume_id: str) -> ClusterMap:
    """Mark a volume gone. A drained one just leaves; one still in the ring (down, say)
    leaves in a new epoch, its fragments rebuilt from the others onto the new placement."""
    volume = current.volume(volume_id)
    if volume is None or volume.state == "gone":
        raise MapRefused(f"volume {volume_id} is not in the map")
    volumes = tuple(replace(v, state="gone") if v.id == volume_id else v
                    for v in current.volumes)
    if volume.state == "draining":
        if current.moving:
            raise MapRefused(f"volume {volume_id} is still draining; wait for "
                             "`shardgate admin rebalance status --wait`")
        return replace(current, volumes=volumes)
    _check_enough(current, volumes, f"removing {volume_id}")
    return _next_epoch(current, volumes)


def finish_move(current: ClusterMap) -> ClusterMap:
    """The map once every fragment is on this epoch's placement: joining volumes become
    active and reads stop looking at the previous ring."""
    return replace(current, previous=None, volumes=tuple(
        replace(v, state="active") if v.state == "joining" else v for v in current.volumes))
