"""Everything a request handler needs about the cluster, built once per process."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from erasure import Codec
from gateway.objects.notices import DurableNotices
from gateway.objects.read_ahead import ReadHints
from gateway.objects.shared_reads import SegmentExchange
from gateway.objects.volume_client import VolumeClient
from gateway.objects.volume_transport import PLACED_EPOCH
from placement import Ring
from shardgate.clustermap import ClusterMap, seed_map
from shardgate.config import ClusterConfig
from shardgate.manifest import ErasureParams, ObjectManifest

SUSPECT_SECONDS = 10.0
log = logging.getLogger("shardgate.gateway.cluster")


@dataclass
class Cluster:
    """`map` is the cluster map this process last saw (shardgate/mapview.py keeps it
    current through `adopt`); the ring and the volumes' addresses come from it."""

    config: ClusterConfig
    map: ClusterMap
    codec: Codec
    volumes: VolumeClient
    ring: Ring = field(init=False)
    previous_ring: Ring | None = field(init=False, default=None)
    notices: DurableNotices = field(init=False)
    segments: SegmentExchange = field(init=False)
    read_hints: ReadHints = field(default_factory=ReadHints)
    _codecs: dict[tuple, Codec] = field(default_factory=dict)
    _suspect_until: dict[str, float] = field(default_factory=dict)
    _background: set[asyncio.Task] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.notices = DurableNotices(self.volumes)
        self.segments = SegmentExchange(self, self.config.gateway.shared_read_bytes)
        self.adopt(self.map)

    @classmethod
    def build(cls, config: ClusterConfig, volumes: VolumeClient | None = None) -> Cluster:
        ec = config.erasure
        codec = Codec(ec.k, ec.m, ec.ec_type, ec.segment_size)
        return cls(config, seed_map(config), codec, volumes or VolumeClient(config))

    def adopt(self, new: ClusterMap) -> None:
        """Serve from a newer map: its ring, and its volumes' addresses."""
        self.map = new
        self.ring = new.ring()
        self.previous_ring = new.previous_ring()
        self.volumes.follow(new.urls(), new.epoch)

    @property
    def width(self) -> int:
        return self.config.erasure.k + self.config.erasure.m

    @property
    def write_quorum(self) -> int:
        """Volumes a committed version is on, at least: what reads and listings reason
        with (never raised by configuration, so versions written before keep counting)."""
        return self.config.erasure.write_quorum

    @property
    def ack_quorum(self) -> int:
        """Volumes that must stage and commit before a write is acknowledged: the write
        quorum, or `[durability] min_write_fragments` when that is higher."""
        return max(self.write_quorum, self.config.durability.min_write_fragments)

    def note_answers(self, results: dict) -> None:
        """Remember which volumes just failed to answer: reads try the others first."""
        now = time.monotonic()
        for volume_id, result in results.items():
            if isinstance(result, BaseException):
                self._suspect_until[volume_id] = now + SUSPECT_SECONDS
            else:
                self._suspect_until.pop(volume_id, None)

    def suspect(self, volume_id: str) -> bool:
        return self._suspect_until.get(volume_id, 0.0) > time.monotonic()

    def report_corrupt(self, volume_id: str, manifest: ObjectManifest, archive_id: str,
                       index: int, reason: str) -> None:
        """Queue a fragment that failed its checksum for healing, on the volume that holds
        it (in the background: the read that found it goes on from other fragments)."""
        entry = {"incarnation": manifest.incarnation, "key": manifest.key,
                 "version_id": manifest.version_id, "archive_id": archive_id,
                 "index": index, "reason": reason}
        self.in_background(self._queue_heal(volume_id, entry))

    def in_background(self, job: Coroutine[Any, Any, None]) -> None:
        """Run `job` without anyone awaiting it (held here until it ends, so it is not
        collected half way)."""
        task = asyncio.create_task(job)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _queue_heal(self, volume_id: str, entry: dict) -> None:
        for target in [volume_id, *(v for v in self.volume_ids if v != volume_id)]:
            try:  # the holder first; if it is down, any other volume keeps the record
                await self.volumes.queue_heal(target, [entry])
                return
            except Exception as exc:  # noqa: BLE001 - try the next volume
                log.warning("could not queue heal on %s: %r", target, exc)

    def codec_for(self, params: ErasureParams | None) -> Codec:
        """The codec an object was written with (its manifest records the parameters)."""
        if params is None:
            return self.codec
        key = (params.k, params.m, params.ec_type, params.segment_size)
        codec = self._codecs.get(key)
        if codec is None:
            codec = self._codecs[key] = Codec(*key)
        return codec

    def placement(self, incarnation: str, key: str) -> tuple[str, ...]:
        """Where a key is written: the newest epoch's ring."""
        return self.ring.placement(f"{incarnation}/{key}", self.width)

    @contextmanager
    def placing(self, incarnation: str, key: str,
                chosen: tuple[tuple[str, ...], int] | None = None) -> Iterator[None]:
        """A write of `key`: every write request this task sends meanwhile carries the
        epoch of the ring that placed it, or a newer ring's that places the key on the
        same volumes (the move to it leaves them where they are). The placement is the
        ring's of now, so enter this before the write chooses it (the ring only grows
        newer), or `chosen` earlier, with its ring's epoch. A write still in flight
        when its key moves is then refused by every volume that knows the new ring
        (docs/cluster-map.md, fencing)."""
        ring_key = f"{incarnation}/{key}"
        if chosen is None:
            chosen = (self.ring.placement(ring_key, self.width), self.ring.epoch)
        volumes, placed_by = frozenset(chosen[0]), chosen[1]

        def epoch() -> int:
            now = self.ring
            if now.epoch == placed_by or frozenset(
                    now.placement(ring_key, self.width)) == volumes:
                return now.epoch
            return placed_by

        token = PLACED_EPOCH.set(epoch)
        try:
            yield
        finally:
            PLACED_EPOCH.reset(token)

    def previous_placement(self, incarnation: str, key: str) -> tuple[str, ...] | None:
        """While fragments move to the newest epoch: the key's placement in the epoch
        before, if it differs (None otherwise)."""
        if self.previous_ring is None:
            return None
        before = self.previous_ring.placement(f"{incarnation}/{key}", self.width)
        return None if set(before) == set(self.placement(incarnation, key)) else before

    def placements(self, incarnation: str, key: str) -> list[tuple[str, ...]]:
        """Every placement a key's rows may be in: the newest, and during a move the
        one before (docs/cluster-map.md: reads look at both)."""
        before = self.previous_placement(incarnation, key)
        now = self.placement(incarnation, key)
        return [now] if before is None else [now, before]

    @property
    def volume_ids(self) -> list[str]:
        """Every volume that serves: in the ring, joining it, or draining out of it."""
        return self.map.ids()

    @property
    def placed_ids(self) -> list[str]:
        """The volumes listings ask (ClusterMap.placed_ids)."""
        return self.map.placed_ids()

    @property
    def majority(self) -> int:
        return len(self.volume_ids) // 2 + 1
