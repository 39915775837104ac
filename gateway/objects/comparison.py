"""The periodic index comparison: every volume's newest durable version of each key set
beside what the other volumes of the key's placement hold, and every disagreement healed.

A volume cannot see a row it never received, and a heal entry can be lost with the
volumes that held it; the comparison finds such rows without either.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.objects.cluster import Cluster
from gateway.objects.heal_refs import Heal, VersionRef, heal_each, walk_rows
from gateway.objects.volume_errors import VolumeUnavailable

log = logging.getLogger("shardgate.gateway.comparison")

PAGE = 500


async def compare_indexes(cluster: Cluster, heal: Heal, rebuilding: set[str],
                          concurrency: int) -> int:
    """One pass over every volume (rebuilding ones left out); how many versions healed."""
    refs: set[VersionRef] = set()
    for vid in cluster.volume_ids:
        if vid in rebuilding:
            continue
        try:
            async for rows in walk_rows(cluster, vid, PAGE):
                keys = sorted({(r["incarnation"], r["key"]) for r in rows})
                refs |= await _disagreements(cluster, keys, rebuilding)
        except VolumeUnavailable:
            continue  # the next pass walks it
    outcomes = await heal_each(heal, refs, concurrency)
    for ref, exc in outcomes.items():
        if exc is not None:
            log.info("compare: heal of %s not done: %r", ref, exc)
    healed = sum(exc is None for exc in outcomes.values())
    if refs:
        log.info("index comparison: %d versions disagreed, %d healed", len(refs), healed)
    return healed


async def _disagreements(cluster: Cluster, keys: list[tuple[str, str]],
                         rebuilding: set[str]) -> set[VersionRef]:
    """The versions some volume of a key's placement has as newest durable and another
    lacks there (volumes that do not answer are left for the next pass)."""
    asked: dict[str, list[tuple[str, str]]] = {}
    for k in keys:
        for vid in cluster.placement(*k):
            if vid not in rebuilding:
                asked.setdefault(vid, []).append(k)
    answers = await asyncio.gather(*(cluster.volumes.newest_durable(vid, ks)
                                     for vid, ks in asked.items()), return_exceptions=True)
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
