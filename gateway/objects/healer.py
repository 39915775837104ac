"""The healer: drains the volumes' heal queues, rebuilding what a version is missing.

Every degraded event (a missed stage, commit or tombstone, a fragment that failed its
checksum, a row left without its durable notice) is a heal entry on one or more volumes.
Healing one version means: read its row from every volume of the placement; a version
that never reached the write quorum is rolled back; otherwise every fragment of every
part is verified where the placement says it lives (by its volume, for a seeded part:
empty sliced reads, erasure/slices.py), the missing or corrupt ones
are rebuilt from any k good ones and written back, and every volume then gets the
manifest naming every holder, marked durable. Only then are the entries dropped: a heal
is complete when every fragment verifies on its volume and every copy of the manifest
names its holder (docs/durability.md). Replaced disks (membership.py) and the periodic
index comparison (comparison.py) feed the same `heal`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace

from erasure import Codec, NotEnoughFragments
from gateway.metrics import HEALED_FRAGMENTS
from gateway.objects import attributes
from gateway.objects.cluster import Cluster
from gateway.objects.comparison import compare_indexes
from gateway.objects.fragment_checks import verify_fragments
from gateway.objects.fragment_copy import CopyFailed, copy_fragments
from gateway.objects.fragment_rebuild import rebuild_fragments, unstage
from gateway.objects.heal_leases import HealLeases
from gateway.objects.heal_refs import HealDeferred, Unrecoverable, VersionRef
from gateway.objects.membership import Membership
from placement import stable_placement
from shardgate import faults
from shardgate.config import DurabilitySpec
from shardgate.manifest import ObjectManifest, PartManifest, named_holders
from shardgate.versionid import version_time_ms

log = logging.getLogger("shardgate.gateway.healer")

ENTRIES_PER_ROUND = 500
UNRECOVERABLE_RETRY_SECONDS = 300.0


def _healed_holders(named: tuple[str | None, ...], placement: tuple[str, ...],
                    down: list[str]) -> tuple[str | None, ...]:
    """The holders a healed manifest names: every volume that answered (the heal
    verifies or rebuilds its fragment), and a down one only if a copy named it already.
    A volume that is merely down may hold a good fragment: erasing it from the manifest
    would leave readers short of it once it is back."""
    return tuple(named[i] if vid in down else vid for i, vid in enumerate(placement))


def copyable_moves(named: tuple[str | None, ...], target: tuple[str, ...],
                   down: list[str]) -> dict[int, str]:
    """The indexes a move changes, each with the volume to copy it from; empty (rebuild
    them all) if one of those is down. An index no volume held (its stage failed at the
    write) is left out: the others are copied, and it is rebuilt after them, from them
    too (data on exactly k volumes, one of them leaving, has only k - 1 fragments on the
    volumes that stay)."""
    moved = {i: old for i, (old, new) in enumerate(zip(named, target, strict=True))
             if old != new and old is not None}
    if any(old in down for old in moved.values()):
        return {}
    return moved


def copy_passes(copies: dict[int, str], named: tuple[str | None, ...]
                ) -> list[dict[int, str]]:
    """The passes of a move: the copies, then (if some index was never written) a
    rebuild of what is still missing, the copies among its sources."""
    return [copies, {}] if copies and None in named else [copies]


class Healer:
    def __init__(self, cluster: Cluster, spec: DurabilitySpec) -> None:
        self.cluster = cluster
        self.spec = spec
        self.healed_fragments = 0
        self.leases = HealLeases(cluster, spec.heal_lease_seconds,
                                 2 * spec.heal_interval_seconds)
        self.members = Membership(cluster, self.heal, spec.heal_concurrency, self.leases)
        self._lost: dict[VersionRef, float] = {}  # unrecoverable versions: next try

    async def run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.spec.compare_interval_seconds
        next_compare = loop.time() + interval
        while True:
            if faults.held("heal.rounds"):
                await asyncio.sleep(self.spec.heal_interval_seconds)
                continue
            try:
                await self.members.check()
                await self.round()
                if interval > 0 and loop.time() >= next_compare:
                    next_compare = loop.time() + interval
                    await compare_indexes(self.cluster, self.leases.leased(self.heal),
                                          self.members.rebuilding,
                                          self.spec.heal_concurrency)
            except Exception:  # a failed round is retried at the next one
                log.exception("heal round failed")
            await asyncio.sleep(self.spec.heal_interval_seconds)

    async def _rebuilding_now(self, placement: tuple[str, ...]) -> set[str]:
        """Which volumes of the placement are rebuilding, asked now (a disk replaced
        since the last membership check must not have its empty answer counted)."""
        health = await asyncio.gather(*(self.cluster.volumes.health(v) for v in placement),
                                      return_exceptions=True)
        return {vid for vid, h in zip(placement, health, strict=True)
                if isinstance(h, BaseException) or h.get("rebuilding")}

    async def _keep_rows(self, rows: dict[str, dict], targets: set[str]) -> None:
        """Copy an undecided version's row, still pending, to rebuilding volumes."""
        row = next(iter(rows.values()))
        manifest = ObjectManifest.from_dict(row["manifest"])
        payload = {"incarnation": manifest.incarnation, "key": manifest.key,
                   "version_id": manifest.version_id, "deleted": manifest.deleted,
                   "manifest": row["manifest"], "summary": manifest.summary(),
                   "stage_id": None, "archive_id": None, "inline": False, "archives": [],
                   "heal": []}
        await asyncio.gather(*(self.cluster.volumes.commit_object(v, payload)
                               for v in targets), return_exceptions=True)

    async def round(self) -> int:
        """Heal every version queued on any volume that answers; how many were healed."""
        cluster = self.cluster
        queues = await asyncio.gather(*(cluster.volumes.heal_entries(vid, ENTRIES_PER_ROUND)
                                        for vid in cluster.volume_ids),
                                      return_exceptions=True)
        wanted: dict[VersionRef, dict[str, int]] = {}
        missing: dict[VersionRef, set] = {}
        for vid, answer in zip(cluster.volume_ids, queues, strict=True):
            if isinstance(answer, BaseException):
                continue
            for entry in answer["entries"]:
                ref = VersionRef(entry["incarnation"], entry["key"], entry["version_id"])
                held = wanted.setdefault(ref, {})
                held[vid] = max(held.get(vid, 0), entry["id"])
                missing.setdefault(ref, set()).add(entry["index"])
        # At risk first: the versions whose entries name the most lost fragments.
        order = sorted(wanted, key=lambda ref: -len(missing[ref]))
        limiter = asyncio.Semaphore(self.spec.heal_concurrency)

        now = asyncio.get_running_loop().time()

        async def one(ref: VersionRef, held: dict[str, int]) -> bool:
            if self._lost.get(ref, 0.0) > now:
                return False  # known unrecoverable: tried again only now and then
            async with limiter, self.leases.lease(ref) as lease:
                if not lease.granted:
                    return False  # another healer is on it
                faults.kill_point("gateway.after_heal_lease")
                try:
                    await self.heal(ref)
                except HealDeferred as exc:
                    log.info("heal of %s/%s %s deferred: %s", ref.incarnation, ref.key,
                             ref.version_id, exc)
                    return False
                except Unrecoverable as exc:
                    log.error("unrecoverable: %s", exc)
                    self._lost[ref] = now + UNRECOVERABLE_RETRY_SECONDS
                    return False
                except Exception:
                    log.exception("heal of %s/%s %s failed", ref.incarnation, ref.key,
                                  ref.version_id)
                    return False
                lease.healed = True  # kept a while from the entries' drop on
                await asyncio.gather(*(cluster.volumes.heal_done(vid, ref.incarnation,
                                                                 ref.key, ref.version_id,
                                                                 up_to)
                                       for vid, up_to in held.items()),
                                     return_exceptions=True)
            return True

        done = await asyncio.gather(*(one(ref, wanted[ref]) for ref in order))
        return sum(done)

    async def heal(self, ref: VersionRef, copy_moved: bool = False) -> None:
        """Bring one version to full redundancy on the key's placement, or roll it back
        if never acknowledged. During a move its rows are read from the placement of the
        epoch before as well, and the fragments a departing volume held are rebuilt on
        the volumes that took its place (each index kept where its volume stays); with
        `copy_moved` (the rebalancer), copied from it instead while it answers, and the
        fragments that stay are left to the scrubber."""
        with self.cluster.placing(ref.incarnation, ref.key):
            await self._heal(ref, copy_moved)

    async def _heal(self, ref: VersionRef, copy_moved: bool) -> None:
        cluster = self.cluster
        placement = cluster.placement(ref.incarnation, ref.key)
        asked = list(dict.fromkeys(
            [*placement, *(cluster.previous_placement(ref.incarnation, ref.key) or ())]))
        answers = await asyncio.gather(*(cluster.volumes.version(vid, ref.incarnation,
                                                                 ref.key, ref.version_id)
                                         for vid in asked), return_exceptions=True)
        down = [vid for vid, a in zip(asked, answers, strict=True)
                if isinstance(a, BaseException)]
        rows = {vid: a for vid, a in zip(asked, answers, strict=True)
                if a and not isinstance(a, BaseException)}
        down_here = [vid for vid in down if vid in placement]
        if not rows:
            if down_here:
                raise HealDeferred(f"volumes {down_here} did not answer")
            return  # gone everywhere: superseded or rolled back already
        if any(r.get("forgotten") for r in rows.values()):
            # Deleted by its id somewhere: the delete rolls forward, never the version.
            payload = {"incarnation": ref.incarnation, "key": ref.key,
                       "version_id": ref.version_id, "durable": True}
            await asyncio.gather(*(cluster.volumes.forget(vid, payload) for vid in placement
                                   if vid not in down))
            if down_here:
                raise HealDeferred(f"volumes {down_here} did not answer")
            return
        if await self._left_behind(ref, placement, rows, down_here):
            return
        durable = any(r["durable"] for r in rows.values()) or len(rows) >= cluster.write_quorum
        if not durable:
            if down:
                raise HealDeferred(f"volumes {down} did not answer")
            age = time.time() - version_time_ms(ref.version_id) / 1000
            if age < self.spec.unmarked_seconds:
                # Its commit may still be going out to the rest of the placement (heal
                # entries of missed stages travel with the commit): not yet decidable.
                raise HealDeferred(f"pending for only {age:.0f} s")
            rebuilding = await self._rebuilding_now(tuple(asked))
            if rebuilding:
                # A rebuilding volume may have lost its copy: no proof it never had one.
                # Keep the evidence there (a pending row) rather than decide now.
                await self._keep_rows(rows, rebuilding - set(rows))
                raise HealDeferred("a volume of the placement is rebuilding",
                                   waits_for_rebuild=True)
            # Every volume answered and fewer than the quorum hold it: never acknowledged.
            log.info("rolling back %s/%s %s (on %d of %d volumes)", ref.incarnation,
                     ref.key, ref.version_id, len(rows), len(asked))
            await asyncio.gather(*(cluster.volumes.roll_back(vid, ref.incarnation, ref.key,
                                                             ref.version_id) for vid in rows))
            return
        manifest = ObjectManifest.from_dict(
            named_holders([r["manifest"] for r in rows.values()]))
        ring_key = f"{ref.incarnation}/{ref.key}"
        targets = [stable_placement(p.placement, cluster.ring, ring_key)
                   for p in manifest.parts]
        healed = replace(manifest, parts=tuple(
            replace(p, placement=_healed_holders(p.placement, target, down))
            for p, target in zip(manifest.parts, targets, strict=True)))
        try:
            for part, target in zip(manifest.parts, targets, strict=True):
                await self._heal_part(healed, part, target, down,
                                      copyable_moves(part.placement, target, down)
                                      if copy_moved else {})
        except NotEnoughFragments as exc:
            # Keep the version's row on every volume, as it was: a volume that lacks it
            # must not serve an older version, nor its absence bring back a deleted key.
            await asyncio.gather(*(self._repair(vid, manifest, None, None)
                                   for vid in placement if vid not in down and vid not in rows),
                                 return_exceptions=True)
            if down:  # the missing fragments may be on them: try again when they answer
                raise HealDeferred(f"volumes {down} did not answer ({exc})") from exc
            raise Unrecoverable(f"{ref.incarnation}/{ref.key} {ref.version_id}: {exc}") from exc
        await asyncio.gather(*(self._repair(vid, healed, None, None) for vid in placement
                               if vid not in down))
        await self._spread_attributes(healed, rows, [v for v in placement if v not in down])
        if down_here:
            raise HealDeferred(f"volumes {down_here} did not answer")

    async def _left_behind(self, ref: VersionRef, placement: tuple[str, ...],
                           rows: dict[str, dict], down_here: list[str]) -> bool:
        """During a move: True when only volumes leaving the key's placement hold the
        version. A version acknowledged before the move was on a write quorum of the old
        placement, so on at least one volume the two placements share; if none of those
        holds it now, it was superseded or deleted there (a write placed by the new ring
        replaced it, never reaching the leaving volume). Moving it would bring back what
        the placement dropped, from fragments already retired: it is left for the
        leaving volume's hand-off instead."""
        if self.cluster.previous_placement(ref.incarnation, ref.key) is None or down_here \
                or any(vid in placement for vid in rows):
            return False
        rebuilding = await self._rebuilding_now(placement)
        if rebuilding:  # a rebuilding volume's missing row proves nothing
            raise HealDeferred(f"volumes {sorted(rebuilding)} are rebuilding",
                               waits_for_rebuild=True)
        log.info("%s/%s %s: held only by volumes leaving its placement (superseded or "
                 "deleted there): not moved", ref.incarnation, ref.key, ref.version_id)
        return True

    async def _spread_attributes(self, manifest: ObjectManifest, rows: dict[str, dict],
                                 targets: list[str]) -> None:
        """Give every volume the newest stamped value of each in-place attribute."""
        newest = attributes.newest(list(rows.values()))
        calls = []
        for name, held in newest.items():
            payload = {"incarnation": manifest.incarnation, "key": manifest.key,
                       "version_id": manifest.version_id, "name": name, **held}
            calls += [self.cluster.volumes.set_attribute(vid, payload) for vid in targets
                      if (rows.get(vid, {}).get("attributes") or {}).get(name) != held]
        await asyncio.gather(*calls)

    async def _heal_part(self, manifest: ObjectManifest, part: PartManifest,
                         placement: tuple[str, ...], down: list[str],
                         copy_from: dict[int, str]) -> None:
        """Verify every fragment archive of a part on its volume; rebuild the bad ones,
        each installed with `manifest` (which already names every holder). With
        `copy_from` (index: the volume leaving it), those are copied, verified, instead;
        an index no volume held is then rebuilt in a second pass, the copies among its
        sources."""
        archives = [part.archive_id(manifest.incarnation, manifest.key, i)
                    for i in range(len(placement))]
        for copies in copy_passes(copy_from, part.placement):
            staged = await self.stage_fragments(
                self.cluster.codec_for(manifest.erasure), part, manifest.incarnation,
                manifest.key, placement, down, copies,
                f"{manifest.incarnation}/{manifest.key} {manifest.version_id}",
                multipart=bool(manifest.upload_id))
            if staged:
                await self._install(manifest, part, placement, staged, archives)

    async def stage_fragments(self, codec: Codec, part: PartManifest, incarnation: str,
                              key: str, placement: tuple[str, ...], down: list[str],
                              copy_from: dict[int, str], what: str,
                              multipart: bool) -> dict[int, str]:
        """Stage on `placement` the part's fragments that are missing or bad there: those
        of `copy_from` copied from the volume named (verified), the rest rebuilt from any
        k good ones. The stage ids by index, for the caller to install. `multipart`: the
        part is a multipart upload's (written around the page cache as it was at first)."""
        bulk = self.cluster.config.is_bulk(part.size, multipart)
        layout = codec.layout(part.size)
        if part.size == 0:
            return {}
        archives = [part.archive_id(incarnation, key, i) for i in range(len(placement))]
        seeds = part.seeds(incarnation, key) or {}
        if copy_from:
            try:
                return await copy_fragments(self.cluster, codec, layout, copy_from,
                                            placement, archives, seeds, part.inline, bulk)
            except CopyFailed as exc:
                log.info("copy of %s part %d failed, rebuilding instead: %s", what,
                         part.number, exc)
        bad = await verify_fragments(self.cluster.volumes, codec, layout, placement,
                                     archives, down, seeds)
        rebuild = sorted(i for i, segments in bad.items() if segments
                         and placement[i] not in down)
        if not rebuild:
            return {}
        return await rebuild_fragments(self.cluster, codec, layout, placement, archives,
                                       bad, rebuild, seeds, part.inline, bulk)

    async def _install(self, manifest: ObjectManifest, part: PartManifest,
                       placement: tuple[str, ...], staged: dict[int, str],
                       archives: list[str]) -> None:
        """Install staged archives (rebuilt or copied) with the manifest; none is left
        staged if one fails."""
        try:
            await asyncio.gather(*(self._repair(placement[i], manifest, stage_id,
                                                archives[i], part.inline)
                                   for i, stage_id in staged.items()))
        except BaseException:
            await unstage(self.cluster, placement, staged)
            raise
        log.info("healed %s/%s %s part %d: fragments %s installed", manifest.incarnation,
                 manifest.key, manifest.version_id, part.number, sorted(staged))
        self.healed_fragments += len(staged)
        HEALED_FRAGMENTS.inc(len(staged))

    async def _repair(self, volume_id: str, manifest: ObjectManifest, stage_id: str | None,
                      archive: str | None, inline: bool = False) -> None:
        """Give one volume the manifest naming every holder, durable; with a stage, the
        rebuilt archive is installed in the same call."""
        await self.cluster.volumes.repair_object(volume_id, {
            "incarnation": manifest.incarnation, "key": manifest.key,
            "version_id": manifest.version_id, "deleted": manifest.deleted,
            "manifest": manifest.to_dict(), "summary": manifest.summary(),
            "stage_id": stage_id, "archive_id": archive,
            "inline": inline and stage_id is not None,
            "archives": manifest.archives_on(volume_id), "heal": []})
