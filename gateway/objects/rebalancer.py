"""The rebalancer: moves every version whose placement changed to the newest ring epoch.

One runs per cluster (a leased leader key in the map store; `shardgate rebalancer`).
For a map that is moving (docs/cluster-map.md):

1. wait until every live gateway and volume says, in its member record, that it has
   seen the epoch: from then on volumes refuse writes placed by the older ring;
2. move the open multipart uploads whose key's placement changed (upload_moves.py);
   then, for each volume that leaves some key's placement, walk its rows, page by page,
   and heal each version whose volume set changed onto the new placement (fragments
   that keep their volume keep their index; the ones that move are copied to their new
   volume, verified segment by segment, or rebuilt there from the others, and every
   manifest copy is rewritten to name them); only then the leaving volume hands its
   copy off (row dropped, archives retired for the grace period). Then its durable
   version tombstones go to the volumes that joined their keys' placement. The walk's
   position is saved in the map store after every page, so a rebalancer killed in the
   middle resumes there;
3. heal what the leaving volumes' heal queues still hold, then end the move in the map.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from dataclasses import asdict, dataclass, field

from gateway.objects.cluster import Cluster
from gateway.objects.heal_refs import HealDeferred, VersionRef, heal_each
from gateway.objects.healer import Healer
from gateway.objects.upload_moves import move_upload
from shardgate import jsonio
from shardgate.clustermap import ClusterMap, finish_move
from shardgate.config import ClusterConfig
from shardgate.mapstore import MapUnavailable
from shardgate.mapview import MEMBERS, PROGRESS, MapView, read_progress, update_map

log = logging.getLogger("shardgate.rebalancer")

PAGE = 200
LEADER = "rebalance/leader"
RETRY_SECONDS = 1.0


def progress_key(config: ClusterConfig, epoch: int) -> str:
    return f"{config.map.prefix}{PROGRESS}{epoch}"


@dataclass
class SourceProgress:
    """One leaving volume's walk: the row id it has moved up to, and its rows at start;
    then its durable version tombstones, up to the (incarnation, key, version) triple."""

    cursor: int = 0
    rows: int = 0
    done: bool = False
    tombstones_after: list[str] | None = None
    tombstones_done: bool = False


@dataclass
class Progress:
    """What `shardgate admin rebalance status` shows, kept in the map store."""

    epoch: int
    phase: str = "waiting"  # waiting (for acks), moving, healing, done
    uploads_done: bool = False  # the open multipart uploads moved (before any row)
    sources: dict[str, SourceProgress] = field(default_factory=dict)
    moved: int = 0
    scanned: int = 0
    started: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> Progress:
        sources = {k: SourceProgress(**v) for k, v in raw.get("sources", {}).items()}
        return cls(**{**raw, "sources": sources})


class Rebalancer:
    def __init__(self, cluster: Cluster, view: MapView) -> None:
        self.cluster = cluster
        self.view = view
        self.config = cluster.config
        self.healer = Healer(cluster, cluster.config.durability)
        spec = cluster.config.rebalance
        self.interval = 1.0 / spec.versions_per_second
        self.concurrency = spec.concurrency
        self.ident = f"{socket.gethostname()}-{os.getpid()}"
        self._changed = asyncio.Event()
        view.listeners.append(lambda _new: self._changed.set())

    async def run_forever(self) -> None:
        """Lead, and move while leading. A lost lease (a refresh refused, or none
        confirmed for a whole lease term: another rebalancer may lead now) stops the move
        at once; a move that stopped by itself (only something that is not an Exception
        can end it) lets the lease run out rather than hold it idle. Either way, lead
        again."""
        while True:
            lease, granted = await self._lead()
            moving = asyncio.create_task(self._move_forever())
            keeping = asyncio.create_task(self._keep(lease, granted))
            try:
                await asyncio.wait({moving, keeping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (moving, keeping):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            if keeping.cancelled():
                log.error("rebalancer's move stopped by itself: its lease is let run out; "
                          "it leads again when it can")
            elif keeping.exception() is not None:
                log.error("rebalancer could not refresh its lease: stopped; it leads again "
                          "when it can", exc_info=keeping.exception())
            else:
                log.error("rebalancer lost its lease: stopped; it leads again when it can")

    async def _move_forever(self) -> None:
        while True:
            current = self.view.current
            try:
                if current.moving:
                    await self.move(current)
                    continue
            except (MapUnavailable, HealDeferred) as exc:
                log.info("move to epoch %d paused: %s", current.epoch, exc)
            except Exception:  # noqa: BLE001 - retried; the walk resumes where it was
                log.exception("move to epoch %d failed; retrying", current.epoch)
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), RETRY_SECONDS)

    async def _lead(self) -> tuple[int, float]:
        """Hold the leader key (leased: a dead leader's lease runs out); wait for it.
        Returns the lease and the loop time its grant was asked for."""
        store, spec = self.view.store, self.config.map
        loop = asyncio.get_running_loop()
        while True:
            try:
                asked = loop.time()
                lease = await store.grant_lease(spec.lease_seconds)
                if await store.put(spec.prefix + LEADER, jsonio.dumps({"id": self.ident}),
                                   if_revision=0,
                                   lease=lease):
                    log.info("rebalancer %s leads", self.ident)
                    return lease, asked
            except MapUnavailable as exc:
                log.info("waiting for the map store: %s", exc)
            await asyncio.sleep(RETRY_SECONDS)

    async def _keep(self, lease: int, confirmed: float) -> None:
        """Refresh the leader's lease; return once it has run out, or once a whole lease
        term has passed since the last refresh the store confirmed (counted from when
        that refresh was asked for). A store that cannot be reached, or answers late,
        may already have let the lease expire and another rebalancer lead: this one
        stops rather than move beside it."""
        loop = asyncio.get_running_loop()
        term = self.config.map.lease_seconds
        while True:
            # Never past the deadline: a refresh that failed late must not buy time.
            await asyncio.sleep(min(term / 4, max(0.0, confirmed + term - loop.time())))
            asked = loop.time()
            left = confirmed + term - asked
            if left <= 0:
                return
            try:
                async with asyncio.timeout(left):
                    if not await self.view.store.refresh_lease(lease):
                        return
            except MapUnavailable:
                continue
            except TimeoutError:
                return
            confirmed = asked

    async def move(self, target: ClusterMap) -> None:
        """Move everything to `target`'s placement; end the move in the map."""
        progress = await self._load(target.epoch)
        if progress.moved or progress.scanned:
            log.info("resuming the move to epoch %d: %d versions moved, %d rows walked "
                     "before", target.epoch, progress.moved, progress.scanned)
        if progress.phase == "waiting":
            await self._wait_acks(target.epoch)
            progress.phase = "moving"
            await self._save(progress)
        cluster = self.cluster
        leaving = self._leaving(target)
        alive = await self._alive(leaving | set(cluster.map.ids()))
        # A leaving volume that is down (removed dead) cannot be walked: the keys it
        # leaves are walked on the first live volume that stays in their placement.
        walkers = sorted(v for v in leaving if v in alive)
        if any(v not in alive for v in leaving):
            walkers = sorted(set(walkers) | (set(target.ids(("active", "joining"))) & alive))
        for vid in walkers:
            source = progress.sources.setdefault(vid, SourceProgress())
            if not source.rows:
                source.rows = (await cluster.volumes.status(vid)).get("objects", 0)
        await self._save(progress)
        if not progress.uploads_done:
            await self._move_uploads(alive)
            progress.uploads_done = True
            await self._save(progress)
        for vid in walkers:
            source = progress.sources.setdefault(vid, SourceProgress())
            if not source.done:
                await self._walk(vid, source, progress, leaving, alive)
            if not source.tombstones_done:
                await self._walk_tombstones(vid, source, progress, alive)
        progress.phase = "healing"
        await self._save(progress)
        await self._heal_queues(sorted(v for v in leaving if v in alive))
        await update_map(self.view.store, self.config,
                         lambda m: finish_move(m) if m.epoch == target.epoch and m.moving
                         else m)
        progress.phase = "done"
        await self._save(progress)
        await self.view.refresh()
        log.info("move to epoch %d finished: %d versions moved", target.epoch, progress.moved)

    def _leaving(self, target: ClusterMap) -> set[str]:
        """Volumes of the previous ring that are not in the new one: for some keys, or
        for all (a drained or removed volume)."""
        before = {n.id for n in target.previous or ()}
        now = set(target.ids(("active", "joining")))
        added = now - before
        # Adding a volume takes a share of keys from every other: each may be leaving.
        return before if added else before - now

    async def _alive(self, volume_ids: set[str]) -> set[str]:
        health = await asyncio.gather(*(self.cluster.volumes.health(v) for v in volume_ids),
                                      return_exceptions=True)
        return {v for v, h in zip(volume_ids, health, strict=True)
                if not isinstance(h, BaseException)}

    def _walker(self, incarnation: str, key: str, alive: set[str]) -> str | None:
        """The one volume whose walk moves this key: the one leaving its placement if it
        is alive, else the first live volume staying in it."""
        before = self.cluster.previous_placement(incarnation, key)
        if before is None:
            return None
        now = set(self.cluster.placement(incarnation, key))
        gone = [v for v in before if v not in now]
        if gone and gone[0] in alive:
            return gone[0]
        staying = sorted(v for v in before if v in now and v in alive)
        return staying[0] if staying else None

    async def _walk(self, vid: str, source: SourceProgress, progress: Progress,
                    leaving: set[str], alive: set[str]) -> None:
        cluster = self.cluster
        while True:
            answer = await cluster.volumes.scan(vid, source.cursor, PAGE)
            rows = answer["rows"]
            if not rows:
                source.done = True
                await self._save(progress)
                return
            refs = {VersionRef(r["incarnation"], r["key"], r["version_id"]) for r in rows
                    if self._walker(r["incarnation"], r["key"], alive) == vid}
            await self._move_all(refs, alive)
            progress.moved += len(refs)
            progress.scanned += len(rows)
            source.cursor = answer["next"]
            await self._save(progress)

    async def _move_uploads(self, alive: set[str]) -> None:
        """Move every open multipart upload whose key's placement changed (its record and
        part fragments), so each completes on the new placement with every fragment
        there. Every live volume is asked, not only the leaving ones: a volume an
        upload's create missed cannot speak for it. A failure raises and the whole pass
        runs again; an upload moved already is found in place and skipped."""
        cluster = self.cluster
        found: dict[str, dict] = {}
        for vid in sorted(alive):
            for record in await cluster.volumes.list_uploads(vid, "", ""):
                if cluster.previous_placement(record["incarnation"], record["key"]):
                    found.setdefault(record["upload_id"], record)
        for record in found.values():
            await move_upload(cluster, self.healer, record, alive)

    async def _walk_tombstones(self, vid: str, source: SourceProgress, progress: Progress,
                               alive: set[str]) -> None:
        """Give the volumes that joined a key's placement the durable tombstones of its
        deleted versions, so that none can come back from a volume that missed the delete."""
        cluster = self.cluster
        while not source.tombstones_done:
            answer = await cluster.volumes.tombstones(vid, source.tombstones_after, PAGE)
            writes = []
            for tomb in answer["tombstones"]:
                inc, key = tomb["incarnation"], tomb["key"]
                if self._walker(inc, key, alive) != vid:
                    continue
                before = set(cluster.previous_placement(inc, key) or ())
                writes += [cluster.volumes.forget(target, {**tomb, "durable": True})
                           for target in cluster.placement(inc, key) if target not in before]
            for outcome in await asyncio.gather(*writes, return_exceptions=True):
                if isinstance(outcome, BaseException):
                    raise outcome  # the page is written again: a tombstone twice is one
            source.tombstones_after = answer["next"]
            source.tombstones_done = answer["next"] is None
            await self._save(progress)

    async def _move_all(self, refs: set[VersionRef], alive: set[str]) -> None:
        """Move every ref; those that cannot be yet (a young pending row, a volume of the
        new placement down) are tried again until they can."""
        pending = set(refs)
        while pending:
            started = time.monotonic()
            outcomes = await heal_each(lambda ref: self._move_one(ref, alive), pending,
                                       self.concurrency)
            failed = {ref: exc for ref, exc in outcomes.items() if exc is not None}
            for ref, exc in list(failed.items())[:3]:
                log.info("move of %s/%s %s waits: %r", ref.incarnation, ref.key,
                         ref.version_id, exc)
            pending = set(failed)
            # The rate limit: at most versions_per_second on average.
            await asyncio.sleep(max(0.0, len(outcomes) * self.interval
                                    - (time.monotonic() - started)))
            if pending:
                await asyncio.sleep(RETRY_SECONDS)

    async def _move_one(self, ref: VersionRef, alive: set[str]) -> None:
        """Heal the version onto the new placement, then let the leaving volume go."""
        cluster = self.cluster
        before = cluster.previous_placement(ref.incarnation, ref.key) or ()
        await self.healer.heal(ref, copy_moved=True)
        now = set(cluster.placement(ref.incarnation, ref.key))
        for vid in before:
            if vid not in now and vid in alive:
                await cluster.volumes.hand_off(vid, ref.incarnation, ref.key, ref.version_id)

    async def _heal_queues(self, leaving: list[str]) -> None:
        """What the leaving volumes' heal queues hold is healed now, onto the new
        placement: nothing is left on a volume about to go."""
        cluster = self.cluster
        for vid in leaving:
            if cluster.map.volume(vid) is not None and \
                    cluster.map.volume(vid).state in ("active", "joining"):
                continue  # it stays in the ring: its own healers drain its queue
            while True:
                entries = (await cluster.volumes.heal_entries(vid, 500))["entries"]
                if not entries:
                    break
                refs = {VersionRef(e["incarnation"], e["key"], e["version_id"])
                        for e in entries}
                outcomes = await heal_each(self.healer.heal, refs, self.concurrency)
                for ref, exc in outcomes.items():
                    if exc is None:
                        up_to = max(e["id"] for e in entries
                                    if (e["incarnation"], e["key"], e["version_id"])
                                    == (ref.incarnation, ref.key, ref.version_id))
                        await cluster.volumes.heal_done(vid, ref.incarnation, ref.key,
                                                        ref.version_id, up_to)
                if any(exc is not None for exc in outcomes.values()):
                    raise HealDeferred(f"heal entries of {vid} not all healed yet")

    async def _wait_acks(self, epoch: int) -> None:
        """Until every live gateway and volume has seen `epoch` (fencing makes any
        straggler harmless after that: its writes are refused)."""
        prefix = self.config.map.prefix + MEMBERS
        logged = 0.0
        while True:
            snapshot = await self.view.store.read(prefix)
            behind = []
            for key, entry in snapshot.entries.items():
                role = key[len(prefix):].split("/", 1)[0]
                if role in ("gateway", "volume") and jsonio.loads(entry.value)["epoch"] < epoch:
                    behind.append(key[len(prefix):])
            if not behind:
                return
            if time.monotonic() - logged > 10:
                log.info("epoch %d: waiting for %s", epoch, ", ".join(sorted(behind)))
                logged = time.monotonic()
            await asyncio.sleep(0.2)

    async def _load(self, epoch: int) -> Progress:
        saved = await read_progress(self.view.store, self.config.map, epoch)
        return Progress(epoch) if saved is None else Progress.from_dict(saved)

    async def _save(self, progress: Progress) -> None:
        progress.updated = time.time()
        await self.view.store.put(progress_key(self.config, progress.epoch),
                                  jsonio.dumps(progress.to_dict()))
