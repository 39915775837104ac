"""The one-time import of bucket records that volumes held before the map store had them.

Clusters before the map store kept each bucket record on every volume and read it with
a majority; this reads them the same way (the newest record per name, with the settings
of its incarnation) so that the first gateway on the map store can copy them over.
Volumes keep their copies; nothing writes them any more.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import quorum_lost
from gateway.objects.cluster import Cluster
from gateway.objects.fanout import answered, first_answers


async def _majority(cluster: Cluster, calls: list) -> list:
    """Answers of at least a majority of volumes (majority writes meet majority reads)."""
    results = await first_answers(dict(enumerate(calls)), cluster.majority,
                                  cancel_rest=False)
    ok = list(answered(results).values())
    if len(ok) < cluster.majority:
        raise quorum_lost("Too few storage volumes answered to import bucket records.")
    return ok


async def _newest(cluster: Cluster, name: str) -> dict[str, Any] | None:
    """The newest record of `name` a majority holds, with its incarnation's settings
    (each setting's newest stamp wins)."""
    found = [r for r in await _majority(cluster, [cluster.volumes.get_bucket(vid, name)
                                                  for vid in cluster.volume_ids]) if r]
    if not found:
        return None
    newest = max(found, key=lambda r: r["stamp"])
    settings: dict[str, dict[str, Any]] = {}
    for record in found:
        if record["incarnation"] != newest["incarnation"]:
            continue
        for setting, held in record.get("settings", {}).items():
            if setting not in settings or held["stamp"] > settings[setting]["stamp"]:
                settings[setting] = held
    return {**newest, "settings": settings}


async def volume_held_records(cluster: Cluster) -> list[dict[str, Any]]:
    """The live bucket records the volumes hold, newest per name."""
    names: dict[str, dict[str, Any]] = {}
    for records in await _majority(cluster, [cluster.volumes.list_buckets(vid)
                                             for vid in cluster.volume_ids]):
        for record in records:
            kept = names.get(record["name"])
            if kept is None or record["stamp"] > kept["stamp"]:
                names[record["name"]] = record
    found = []
    for name, record in sorted(names.items()):
        if record["deleted"]:
            continue
        newest = await _newest(cluster, name)
        if newest is not None and not newest["deleted"]:
            found.append(newest)
    return found
