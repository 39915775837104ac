"""The healer: drains the volumes' heal queues, rebuilding what a version is missing.

Every degraded event (a missed stage, commit or tombstone, a fragment that failed its
checksum, a row left without its durable notice) is a heal entry on one or more volumes.
Healing one version means: read its row from every volume of the placement; a version
that never reached the write quorum is rolled back; otherwise every fragment of every
part is read and verified where the placement says it lives, the missing or corrupt ones
are rebuilt from any k good ones and written back, and every volume then gets the
manifest naming every holder, marked durable. Only then are the entries dropped: a heal
is complete when every fragment verifies on its volume and every copy of the manifest
names its holder (docs/durability.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from erasure import Codec, FragmentCorrupt, NotEnoughFragments
from gateway.metrics import HEALED_FRAGMENTS
from gateway.objects.cluster import Cluster
from gateway.objects.volume_client import ArchiveStream, VolumeRejected, VolumeUnavailable
from shardgate.config import DurabilitySpec
from shardgate.manifest import ObjectManifest, PartManifest
from shardgate.versionid import version_time_ms

log = logging.getLogger("shardgate.gateway.healer")

ENTRIES_PER_ROUND = 500
COMPARE_PAGE = 500


@dataclass(frozen=True)
class VersionRef:
    incarnation: str
    key: str
    version_id: str


class HealDeferred(Exception):
    """Not decidable now (a volume did not answer, a version too young, a volume
    rebuilding): try again in a later round."""

    def __init__(self, reason: str, waits_for_rebuild: bool = False) -> None:
        super().__init__(reason)
        self.waits_for_rebuild = waits_for_rebuild


class Unrecoverable(Exception):
    """Fewer than k good fragments are left of some segment: the version's rows are
    kept everywhere (so nothing older can be served in its place), its data is lost."""


UNRECOVERABLE_RETRY_SECONDS = 300.0

class Healer:
    def __init__(self, cluster: Cluster, spec: DurabilitySpec) -> None:
        self.cluster = cluster
        self.spec = spec
        self.healed_fragments = 0
        self.rebuilding: set[str] = set()  # volumes whose answers do not count yet
        self._rebuilds: dict[str, asyncio.Task] = {}
        self._lost: dict[VersionRef, float] = {}  # unrecoverable versions: next try

    async def run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.spec.compare_interval_seconds
        next_compare = loop.time() + interval
        while True:
            try:
                await self.check_members()
                await self.round()
                if interval > 0 and loop.time() >= next_compare:
                    next_compare = loop.time() + interval
                    await self.compare_indexes()
            except Exception:  # a failed round is retried at the next one
                log.exception("heal round failed")
            await asyncio.sleep(self.spec.heal_interval_seconds)

    async def compare_indexes(self) -> int:
        """Set each volume's newest durable version of every key it holds beside the
        other volumes of the key's placement, and heal every version they disagree on.

        A volume cannot see a row it never received, and a heal entry can be lost with
        the volumes that held it; the comparison finds such rows without either. Returns
        how many versions it healed."""
        cluster = self.cluster
        refs: set[VersionRef] = set()
        for vid in cluster.volume_ids:
            if vid in self.rebuilding:
                continue
            after = 0
            while True:
                try:
                    page = await cluster.volumes.scan(vid, after, COMPARE_PAGE)
                except VolumeUnavailable:
                    break
                keys = sorted({(r["incarnation"], r["key"]) for r in page["rows"]})
                if keys:
                    refs |= await self._disagreements(keys)
                if page["next"] is None:
                    break
                after = page["next"]
        limiter = asyncio.Semaphore(self.spec.heal_concurrency)
        healed = 0

        async def one(ref: VersionRef) -> None:
            nonlocal healed
            async with limiter:
                try:
                    await self.heal(ref)
                    healed += 1
                except Exception as exc:  # noqa: BLE001 - the next comparison retries it
                    log.info("compare: heal of %s not done: %r", ref, exc)

        await asyncio.gather(*(one(ref) for ref in refs))
        if refs:
            log.info("index comparison: %d versions disagreed, %d healed", len(refs), healed)
        return healed

    async def _disagreements(self, keys: list[tuple[str, str]]) -> set[VersionRef]:
        """The versions some volume of a key's placement has as newest durable and
        another lacks there (volumes that do not answer are left for the next pass)."""
        cluster = self.cluster
        placements = {k: cluster.placement(*k) for k in keys}
        asked: dict[str, list[tuple[str, str]]] = {}
        for k, volumes in placements.items():
            for vid in volumes:
                if vid not in self.rebuilding:
                    asked.setdefault(vid, []).append(k)
        answers = await asyncio.gather(*(cluster.volumes.newest_durable(vid, ks)
                                         for vid, ks in asked.items()),
                                       return_exceptions=True)
        newest: dict[tuple[str, str], dict[str, str]] = {}
        for (vid, ks), answer in zip(asked.items(), answers, strict=True):
            if isinstance(answer, BaseException):
                continue
            for k, version in zip(ks, answer, strict=True):
                newest.setdefault(k, {})[vid] = version
        refs = set()
        for k, seen in newest.items():
            if len(set(seen.values())) > 1:
                refs |= {VersionRef(k[0], k[1], v) for v in seen.values() if v}
        return refs

    async def check_members(self) -> int:
        """Tell replaced volumes from known ones by their data ids, and rebuild them.

        Every volume records the data id of every volume as last seen (majority-read
        here). A volume whose data id differs from the record lost what it held (a new
        disk under an old id): it is marked rebuilding, so its answers count toward no
        read or list until every version its placements give it has been healed onto it.
        A new data directory marks itself rebuilding at start; with no record anywhere
        (a new cluster) the marks are cleared. Returns how many volumes answered."""
        cluster = self.cluster
        health = await asyncio.gather(*(cluster.volumes.health(v) for v in cluster.volume_ids),
                                      return_exceptions=True)
        answered = {v: h for v, h in zip(cluster.volume_ids, health, strict=True)
                    if not isinstance(h, BaseException) and h.get("data_id")}
        views = await asyncio.gather(*(cluster.volumes.get_peers(v) for v in answered),
                                     return_exceptions=True)
        records: dict[str, dict[str, int]] = {}
        for seen_by, view in zip(answered, views, strict=True):
            if isinstance(view, BaseException):
                continue
            for vid, data_id in view.items():
                if vid != seen_by:  # a volume's own record dies with its data
                    records.setdefault(vid, {}).setdefault(data_id, 0)
                    records[vid][data_id] += 1
        new_cluster = not records
        for vid, h in answered.items():
            known = max(records[vid], key=records[vid].get) if vid in records else None
            if h["rebuilding"] and new_cluster:
                await cluster.volumes.set_rebuilding(vid, False)
                h["rebuilding"] = False
            elif known is not None and known != h["data_id"] and not h["rebuilding"]:
                log.warning("volume %s has a new data directory: rebuilding it", vid)
                await cluster.volumes.set_rebuilding(vid, True)
                h["rebuilding"] = True
        self.rebuilding = {vid for vid, h in answered.items() if h["rebuilding"]}
        peers = {vid: h["data_id"] for vid, h in answered.items()}
        await asyncio.gather(*(cluster.volumes.put_peers(v, peers) for v in answered),
                             return_exceptions=True)
        for vid in self.rebuilding:
            task = self._rebuilds.get(vid)
            if task is None or task.done():
                self._rebuilds[vid] = asyncio.create_task(self._rebuild_volume(vid))
        return len(answered)

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

    async def _rebuild_volume(self, target: str) -> None:
        """Heal onto `target` every version whose placement includes it, as the other
        volumes hold them; then its answers count again. Bucket records come first."""
        cluster = self.cluster
        try:
            await self._copy_bucket_records(target)
            refs: set[VersionRef] = set()
            for vid in cluster.volume_ids:
                if vid == target:
                    continue
                after = 0
                while True:
                    page = await cluster.volumes.scan(vid, after, 1000)
                    for row in page["rows"]:
                        if target in cluster.placement(row["incarnation"], row["key"]):
                            refs.add(VersionRef(row["incarnation"], row["key"],
                                                row["version_id"]))
                    if page["next"] is None:
                        break
                    after = page["next"]
            limiter = asyncio.Semaphore(self.spec.heal_concurrency)

            lost: list[VersionRef] = []

            async def one(ref: VersionRef) -> None:
                async with limiter:
                    try:
                        await self.heal(ref)
                    except Unrecoverable:
                        lost.append(ref)
                    except HealDeferred as exc:
                        if not exc.waits_for_rebuild:
                            raise  # a volume down: the rebuild is retried later
                        # undecided, its row kept on the target: decided once it counts

            await asyncio.gather(*(one(ref) for ref in refs))
            await cluster.volumes.set_rebuilding(target, False)
            self.rebuilding.discard(target)
            log.info("volume %s rebuilt: %d versions healed onto it", target, len(refs))
            if lost:
                log.error("volume %s rebuilt, but %d versions had lost more than m "
                          "fragments and could not be: %s", target, len(lost), lost[:20])
        except Exception as exc:  # retried from the next membership check
            log.warning("rebuild of %s not finished: %r", target, exc)

    async def _copy_bucket_records(self, target: str) -> None:
        cluster = self.cluster
        lists = await asyncio.gather(*(cluster.volumes.list_buckets(v)
                                       for v in cluster.volume_ids if v != target),
                                     return_exceptions=True)
        newest: dict[str, dict] = {}
        for records in lists:
            if isinstance(records, BaseException):
                continue
            for record in records:
                kept = newest.get(record["name"])
                if kept is None or record["stamp"] > kept["stamp"]:
                    newest[record["name"]] = record
        for record in newest.values():
            await cluster.volumes.put_bucket(target, record)

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
            async with limiter:
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
            await asyncio.gather(*(cluster.volumes.heal_done(vid, ref.incarnation, ref.key,
                                                             ref.version_id, up_to)
                                   for vid, up_to in held.items()), return_exceptions=True)
            return True

        done = await asyncio.gather(*(one(ref, wanted[ref]) for ref in order))
        return sum(done)

    async def heal(self, ref: VersionRef) -> None:
        """Bring one version to full redundancy, or roll it back if never acknowledged."""
        cluster = self.cluster
        placement = cluster.placement(ref.incarnation, ref.key)
        answers = await asyncio.gather(*(cluster.volumes.version(vid, ref.incarnation,
                                                                 ref.key, ref.version_id)
                                         for vid in placement), return_exceptions=True)
        down = [vid for vid, a in zip(placement, answers, strict=True)
                if isinstance(a, BaseException)]
        rows = {vid: a for vid, a in zip(placement, answers, strict=True)
                if a and not isinstance(a, BaseException)}
        if not rows:
            if down:
                raise HealDeferred(f"volumes {down} did not answer")
            return  # gone everywhere: superseded or rolled back already
        durable = any(r["durable"] for r in rows.values()) or len(rows) >= cluster.write_quorum
        if not durable:
            if down:
                raise HealDeferred(f"volumes {down} did not answer")
            age = time.time() - version_time_ms(ref.version_id) / 1000
            if age < self.spec.unmarked_seconds:
                # Its commit may still be going out to the rest of the placement (heal
                # entries of missed stages travel with the commit): not yet decidable.
                raise HealDeferred(f"pending for only {age:.0f} s")
            rebuilding = await self._rebuilding_now(placement)
            if rebuilding:
                # A rebuilding volume may have lost its copy: no proof it never had one.
                # Keep the evidence there (a pending row) rather than decide now.
                await self._keep_rows(rows, rebuilding - set(rows))
                raise HealDeferred("a volume of the placement is rebuilding",
                                   waits_for_rebuild=True)
            # Every volume answered and fewer than the quorum hold it: never acknowledged.
            log.info("rolling back %s/%s %s (on %d of %d volumes)", ref.incarnation,
                     ref.key, ref.version_id, len(rows), len(placement))
            await asyncio.gather(*(cluster.volumes.roll_back(vid, ref.incarnation, ref.key,
                                                             ref.version_id) for vid in rows))
            return
        manifest = ObjectManifest.from_dict(next(iter(rows.values()))["manifest"])
        holders = tuple(None if vid in down else vid for vid in placement)
        healed = replace(manifest, parts=tuple(replace(p, placement=holders)
                                               for p in manifest.parts))
        try:
            for part in manifest.parts:
                await self._heal_part(healed, part, placement, down)
        except NotEnoughFragments as exc:
            # Keep the version's row on every volume, as it was: a volume that lacks it
            # must not serve an older version, nor its absence bring back a deleted key.
            await asyncio.gather(*(self._repair(vid, manifest, None, None)
                                   for vid in placement if vid not in down and vid not in rows),
                                 return_exceptions=True)
            raise Unrecoverable(f"{ref.incarnation}/{ref.key} {ref.version_id}: {exc}") from exc
        await asyncio.gather(*(self._repair(vid, healed, None, None) for vid in placement
                               if vid not in down))
        if down:
            raise HealDeferred(f"volumes {down} did not answer")

    async def _heal_part(self, manifest: ObjectManifest, part: PartManifest,
                         placement: tuple[str, ...], down: list[str]) -> None:
        """Verify every fragment archive of a part on its volume; rebuild the bad ones,
        each installed with `manifest` (which already names every holder)."""
        codec = self.cluster.codec_for(manifest.erasure)
        layout = codec.layout(part.size)
        if part.size == 0:
            return
        archives = [part.archive_id(manifest.incarnation, manifest.key, i)
                    for i in range(len(placement))]
        seeds = part.seeds(manifest.incarnation, manifest.key) or {}
        bad = await self._verify(codec, layout, placement, archives, down, seeds)
        rebuild = sorted(i for i, segments in bad.items() if segments
                         and placement[i] not in down)
        if rebuild:
            staged = await self._rebuild(codec, layout, placement, archives, bad, rebuild, seeds,
                                         part.inline)
            try:
                await asyncio.gather(*(self._repair(placement[i], manifest, staged[i],
                                                    archives[i], part.inline)
                                       for i in rebuild))
            except BaseException:
                await self._unstage(placement, staged)
                raise
            log.info("healed %s/%s %s part %d: rebuilt fragments %s", manifest.incarnation,
                     manifest.key, manifest.version_id, part.number, rebuild)
            self.healed_fragments += len(rebuild)
            HEALED_FRAGMENTS.inc(len(rebuild))

    async def _verify(self, codec: Codec, layout, placement: tuple[str, ...],  # noqa: ANN001
                      archives: list[str], down: list[str],
                      seeds: dict[int, int]) -> dict[int, set[int]]:
        """For each index, the segments whose fragment is missing or fails its checksum."""
        segments = range(layout.num_segments)
        bad: dict[int, set[int]] = {}

        async def check(index: int) -> None:
            if placement[index] in down:
                bad[index] = set(segments)
                return
            bad[index] = set()
            stream = await self._open(placement[index], archives[index], layout, 0)
            if stream is None:
                bad[index] = set(segments)
                return
            try:
                for segment in segments:
                    try:
                        framed = await stream.read_exactly(layout.framed_length(segment))
                        codec.unframe(framed, index, seeds.get(index, 0))
                    except FragmentCorrupt:
                        bad[index].add(segment)
                    except VolumeUnavailable:
                        bad[index].update(s for s in segments if s >= segment)
                        return
            finally:
                stream.close()

        await asyncio.gather(*(check(i) for i in range(len(placement))))
        return bad

    async def _open(self, volume_id: str, archive: str, layout, segment: int  # noqa: ANN001
                    ) -> ArchiveStream | None:
        try:
            return await self.cluster.volumes.open_archive(
                volume_id, archive, layout.archive_offset(segment), layout.archive_size - 1)
        except (VolumeUnavailable, VolumeRejected):
            return None

    async def _rebuild(self, codec: Codec, layout, placement: tuple[str, ...],  # noqa: ANN001
                       archives: list[str], bad: dict[int, set[int]], rebuild: list[int],
                       seeds: dict[int, int], inline: bool) -> dict[int, str]:
        """Stage rebuilt archives for `rebuild` on their volumes; their stage ids.

        Every segment is rebuilt from the good fragments of that segment, wherever they
        are: k good ones per segment suffice, even spread over damaged archives."""
        segments = range(layout.num_segments)
        streams = {}
        for i in range(len(placement)):
            if i in rebuild and len(bad[i]) == layout.num_segments:
                continue
            stream = await self._open(placement[i], archives[i], layout, 0)
            if stream is not None:
                streams[i] = stream
        queues = {i: asyncio.Queue(4) for i in rebuild}
        batch = uuid.uuid4().hex
        stage_ids = {i: f"{batch}.heal.{i}" for i in rebuild}

        async def body(i: int) -> AsyncIterator[bytes]:
            while (item := await queues[i].get()) is not None:
                yield item

        uploads = {i: asyncio.create_task(self.cluster.volumes.stage(
            placement[i], stage_ids[i], body(i), layout.archive_size, inline=inline))
            for i in rebuild}
        try:
            for segment in segments:
                size = layout.framed_length(segment)
                fragments = {}
                for i, stream in streams.items():
                    framed = await stream.read_exactly(size)
                    if segment not in bad[i]:
                        fragments[i] = framed
                # Only this segment's bad copies are rebuilt; good ones are kept as read.
                bad_here = [i for i in rebuild if i not in fragments]
                rebuilt = (await asyncio.to_thread(codec.reconstruct, fragments, bad_here,
                                                   seeds)
                           if bad_here else {})
                for i in rebuild:
                    await queues[i].put(rebuilt[i] if i in bad_here else fragments[i])
            for i in rebuild:
                await queues[i].put(None)
            await asyncio.gather(*uploads.values())
        except BaseException:
            for task in uploads.values():
                task.cancel()
            await asyncio.gather(*uploads.values(), return_exceptions=True)
            await self._unstage(placement, stage_ids)
            raise
        finally:
            for stream in streams.values():
                stream.close()
        return stage_ids

    async def _unstage(self, placement: tuple[str, ...], stage_ids: dict[int, str]) -> None:
        """Remove rebuilt stages a failed heal leaves (a repaired one is gone already)."""
        await asyncio.gather(*(self.cluster.volumes.abort_stage(placement[i], sid)
                               for i, sid in stage_ids.items()), return_exceptions=True)

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
