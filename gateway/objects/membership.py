"""Replaced disks: tell a volume that lost its data from a known one, and rebuild it.

Every data directory carries a data id, and every volume records the data id of every
volume as last seen (majority-read here). A volume whose data id differs from the
record lost what it held (a new disk under an old id): it is marked rebuilding, so its
answers count toward no read or list, until every version its placements give it has
been healed onto it (docs/durability.md, replaced disks). Every gateway finds the
replaced disk and rebuilds it; each version is healed under its heal lease, and one
another healer holds is waited for and then looked at again (so it is rebuilt once,
and still every version is known to be on the disk before its answers count).
"""

from __future__ import annotations

import asyncio
import logging

from gateway.objects.cluster import Cluster
from gateway.objects.heal_leases import HealLeases, LeasedElsewhere
from gateway.objects.heal_refs import (
    Heal,
    HealDeferred,
    Unrecoverable,
    VersionRef,
    heal_each,
    walk_rows,
)

log = logging.getLogger("shardgate.gateway.membership")

SCAN_PAGE = 1000


class Membership:
    def __init__(self, cluster: Cluster, heal: Heal, concurrency: int,
                 leases: HealLeases) -> None:
        self.cluster = cluster
        self.heal = heal
        self.leases = leases
        self.concurrency = concurrency
        self.rebuilding: set[str] = set()  # volumes whose answers do not count yet
        self._rebuilds: dict[str, asyncio.Task] = {}

    async def check(self) -> int:
        """Mark replaced volumes rebuilding and start rebuilding them. A new data
        directory marks itself rebuilding at start; with no record anywhere (a new
        cluster) the marks are cleared. Returns how many volumes answered."""
        cluster = self.cluster
        health = await asyncio.gather(*(cluster.volumes.health(v) for v in cluster.volume_ids),
                                      return_exceptions=True)
        answered = {v: h for v, h in zip(cluster.volume_ids, health, strict=True)
                    if not isinstance(h, BaseException) and h.get("data_id")}
        records = await self._records(list(answered))
        new_cluster = not records
        for vid, h in answered.items():
            known = max(records[vid], key=records[vid].get) if vid in records else None
            mapped = cluster.map.volume(vid)
            joining = mapped is not None and mapped.state == "joining"
            if h["rebuilding"] and (new_cluster or (known is None and joining)):
                # A new cluster, or a volume just added: nothing was ever on it to
                # rebuild (the rebalancer moves its share onto it).
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
                self._rebuilds[vid] = asyncio.create_task(self._rebuild(vid))
        return len(answered)

    async def _records(self, answered: list[str]) -> dict[str, dict[str, int]]:
        """Per volume, how many other volumes recorded each data id for it (a volume's
        record of itself dies with its data, so it is left out)."""
        views = await asyncio.gather(*(self.cluster.volumes.get_peers(v) for v in answered),
                                     return_exceptions=True)
        records: dict[str, dict[str, int]] = {}
        for seen_by, view in zip(answered, views, strict=True):
            if isinstance(view, BaseException):
                continue
            for vid, data_id in view.items():
                if vid != seen_by:
                    counts = records.setdefault(vid, {})
                    counts[data_id] = counts.get(data_id, 0) + 1
        return records

    async def _heal_all(self, refs: set[VersionRef]) -> dict[VersionRef, Exception | None]:
        """Heal every ref, each under its lease. One another healer holds is healed once it
        is free (finding it whole then is a check, not a rebuild): the lease's holder
        may die, and "someone is on it" does not prove it is on the disk."""
        outcomes: dict[VersionRef, Exception | None] = {}
        while refs:
            outcomes |= await heal_each(self.leases.leased(self.heal), refs,
                                        self.concurrency)
            refs = {ref for ref in refs if isinstance(outcomes[ref], LeasedElsewhere)}
            if refs:
                await asyncio.sleep(self.leases.retry_seconds)
        return outcomes

    async def _rebuild(self, target: str) -> None:
        """Heal onto `target` every version whose placement includes it, as the other
        volumes hold them; then its answers count again."""
        cluster = self.cluster
        try:
            refs: set[VersionRef] = set()
            for vid in cluster.volume_ids:
                if vid != target:
                    async for rows in walk_rows(cluster, vid, SCAN_PAGE):
                        refs |= {VersionRef(r["incarnation"], r["key"], r["version_id"])
                                 for r in rows
                                 if target in cluster.placement(r["incarnation"], r["key"])}
            outcomes = await self._heal_all(refs)
            lost = [ref for ref, exc in outcomes.items() if isinstance(exc, Unrecoverable)]
            for exc in outcomes.values():
                # A version undecided because of the rebuild itself has its row kept on
                # the target and is decided once the target counts; anything else (a
                # volume down) is retried with the whole rebuild.
                if exc is not None and not isinstance(exc, Unrecoverable) and not (
                        isinstance(exc, HealDeferred) and exc.waits_for_rebuild):
                    raise exc
            await cluster.volumes.set_rebuilding(target, False)
            self.rebuilding.discard(target)
            log.info("volume %s rebuilt: %d versions healed onto it", target, len(refs))
            if lost:
                log.error("volume %s rebuilt, but %d versions had lost more than m "
                          "fragments and could not be: %s", target, len(lost), lost[:20])
        except Exception as exc:  # retried from the next membership check
            log.warning("rebuild of %s not finished: %r", target, exc)
