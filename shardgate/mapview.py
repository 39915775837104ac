"""A process's view of the cluster map: read at start, kept current by a watch, persisted.

Every gateway and volume holds the whole map in memory and on its own disk. It starts
from the store when the store answers, else from its persisted copy, else from the
cluster file (the seed); a watch then delivers each new epoch within a second or so,
a periodic re-read catches a watch that stalled, and a watch resumed past compaction
reads everything again. Each process also keeps a leased member record saying which
epoch it has seen: the rebalancer waits for every live member before moving anything
(docs/cluster-map.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from shardgate import faults, jsonio, localcopy
from shardgate.clustermap import ClusterMap, seed_map
from shardgate.config import ClusterConfig, ConfigError, MapSpec
from shardgate.mapstore import Compacted, MapStore, MapUnavailable

log = logging.getLogger("shardgate.map")

MAP_KEY = "map"
# Every write a gateway sends a volume carries its ring epoch (volume_server/fence.py).
EPOCH_HEADER = "x-shardgate-epoch"
MEMBERS = "members/"
PROGRESS = "rebalance/"


def open_store(spec: MapSpec) -> MapStore:
    """The store the cluster file names."""
    if spec.store == "etcd":
        from shardgate.mapstore.etcd import EtcdStore

        return EtcdStore(spec.endpoints, spec.timeout_seconds)
    from shardgate.mapstore.embedded import EmbeddedStore

    if not spec.path:
        raise ConfigError("[map] path is empty: the embedded map store needs a file")
    return EmbeddedStore(spec.path)


def map_key(spec: MapSpec) -> str:
    return spec.prefix + MAP_KEY


def member_key(spec: MapSpec, role: str, member_id: str) -> str:
    return f"{spec.prefix}{MEMBERS}{role}/{member_id}"


async def read_map(store: MapStore, spec: MapSpec) -> tuple[ClusterMap | None, int]:
    """The map in the store and its revision (None, 0 if the cluster has none yet)."""
    snapshot = await store.read(map_key(spec))
    entry = snapshot.entries.get(map_key(spec))
    if entry is None:
        return None, 0
    return ClusterMap.from_dict(jsonio.loads(entry.value)), entry.mod_revision


async def read_progress(store: MapStore, spec: MapSpec, epoch: int) -> dict | None:
    """The rebalancer's saved progress of the move to `epoch` (None before it starts)."""
    key = f"{spec.prefix}{PROGRESS}{epoch}"
    entry = (await store.read(key)).entries.get(key)
    return None if entry is None else jsonio.loads(entry.value)


async def read_or_seed(store: MapStore, config: ClusterConfig) -> tuple[ClusterMap, int]:
    """The cluster's map; the first process to find none writes the cluster file's."""
    current, revision = await read_map(store, config.map)
    if current is None:
        seeded = seed_map(config)
        if await store.put(map_key(config.map), jsonio.dumps(seeded.to_dict()),
                           if_revision=0):
            log.info("cluster map seeded from the cluster file: epoch 1, %d volumes",
                     len(seeded.volumes))
        current, revision = await read_map(store, config.map)
        assert current is not None
    return current, revision


async def update_map(store: MapStore, config: ClusterConfig,
                     change: Callable[[ClusterMap], ClusterMap]) -> ClusterMap:
    """Apply `change` to the newest map by compare-and-set, again on a lost race; the map
    written. `change` raises (MapRefused) to refuse, or returns its input for no change."""
    while True:
        current, revision = await read_or_seed(store, config)
        new = change(current)
        if new == current:
            return current
        if await store.put(map_key(config.map), jsonio.dumps(new.to_dict()),
                           if_revision=revision):
            return new


def with_url(volume_id: str, url: str) -> Callable[[ClusterMap], ClusterMap]:
    """The change a volume makes when it starts at another address than the map says
    (placement is by id: only its address changes, not the epoch)."""
    def change(current: ClusterMap) -> ClusterMap:
        volume = current.volume(volume_id)
        if volume is None or volume.url == url or not url:
            return current
        return replace(current, volumes=tuple(
            replace(v, url=url) if v.id == volume_id else v for v in current.volumes))
    return change


class MapView:
    """The current map of one process; `listeners` are called with each new one."""

    def __init__(self, config: ClusterConfig, role: str, member_id: str,
                 cache_dir: str | Path | None = None, url: str = "") -> None:
        self.config = config
        self.spec = config.map
        self.role, self.member_id, self.url = role, member_id, url
        self.copy_path = Path(cache_dir or self.spec.cache_dir) / f"map-{role}.json"
        self.current: ClusterMap = seed_map(config)
        self.revision = 0
        self.store_reachable = False
        self.listeners: list[Callable[[ClusterMap], None]] = []
        self._store: MapStore | None = None
        self._tasks: list[asyncio.Task] = []
        self._lease: int | None = None

    async def start(self, store: MapStore | None = None) -> MapView:
        self._store = store or open_store(self.spec)
        self._load_copy()
        try:
            await self.refresh()
        except MapUnavailable as exc:
            log.warning("map store unreachable at start, serving from %s epoch %d: %s",
                        "the persisted copy" if self.revision else "the cluster file",
                        self.current.epoch, exc)
        self._tasks = [asyncio.create_task(self._watch_forever()),
                       asyncio.create_task(self._member_forever())]
        return self

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._store is not None:
            await self._store.close()

    @property
    def store(self) -> MapStore:
        assert self._store is not None, "MapView.start() first"
        return self._store

    async def refresh(self) -> ClusterMap:
        """Read the map from the store now (a fencing refusal: someone is ahead of us)."""
        current, revision = await read_or_seed(self.store, self.config)
        self.store_reachable = True
        self._adopt(current, revision)
        return self.current

    def _adopt(self, new: ClusterMap, revision: int) -> None:
        if revision <= self.revision:
            return
        changed = new != self.current
        self.current, self.revision = new, revision
        self._save_copy()
        if changed:
            log.info("cluster map epoch %d (%d volumes%s)", new.epoch, len(new.ids()),
                     ", moving" if new.moving else "")
            for listener in self.listeners:
                listener(new)

    def _load_copy(self) -> None:
        raw = localcopy.load(self.copy_path, "map")
        try:
            if raw is not None:
                self.current = ClusterMap.from_dict(raw["map"])
                self.revision = int(raw["revision"])
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable map copy %s: %r", self.copy_path, exc)

    def _save_copy(self) -> None:
        localcopy.save(self.copy_path, {"revision": self.revision,
                                        "map": self.current.to_dict()}, "map")

    async def _watch_forever(self) -> None:
        key = map_key(self.spec)
        while True:
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.spec.refresh_seconds):
                        await self._watch_once(key)
                if not faults.held("map.watch"):
                    await self.refresh()
            except Compacted:
                log.info("map watch resumed past compaction: reading the map again")
            except MapUnavailable as exc:
                self.store_reachable = False
                log.warning("map store unreachable (serving epoch %d): %s",
                            self.current.epoch, exc)
                await asyncio.sleep(1.0)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a watch failure must not stop the process
                log.exception("map watch failed")
                await asyncio.sleep(1.0)

    async def _watch_once(self, key: str) -> None:
        async for events in self.store.watch(key, self.revision + 1):
            self.store_reachable = True
            if faults.held("map.watch"):
                continue
            for event in events:
                if event.value is not None:
                    self._adopt(ClusterMap.from_dict(jsonio.loads(event.value)),
                                event.revision)

    async def _member_forever(self) -> None:
        """Keep this process's leased member record saying which epoch it has seen: put
        again within a quarter second of a new epoch, the lease refreshed every third of
        its time."""
        key = member_key(self.spec, self.role, self.member_id)
        written: tuple[int, int] | None = None
        refreshed = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                if self._lease is None or (
                        loop.time() - refreshed > self.spec.lease_seconds / 3
                        and not await self.store.refresh_lease(self._lease)):
                    self._lease = await self.store.grant_lease(self.spec.lease_seconds)
                    written = None
                if loop.time() - refreshed > self.spec.lease_seconds / 3:
                    refreshed = loop.time()
                if written != (self._lease, self.current.epoch):
                    record = {"epoch": self.current.epoch, "url": self.url, "pid": os.getpid()}
                    await self.store.put(key, jsonio.dumps(record), lease=self._lease)
                    written = (self._lease, self.current.epoch)
            except MapUnavailable as exc:
                log.debug("member record not refreshed: %s", exc)
                if "expired" in str(exc) or "lease not found" in str(exc):
                    self._lease = None  # granted anew at the next turn
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.store.delete(key), 1.0)
                raise
            await asyncio.sleep(0.25)
