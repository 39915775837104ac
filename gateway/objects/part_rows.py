"""Reading a multipart upload's part rows back from its volumes: which volume holds each
fragment of a part.

Every volume that took a part keeps a row for it with the part's manifest, naming the
holder of each fragment index as it was when the row was written. A rebalance that moves
a fragment writes a row naming the new holder on that volume only, so the other copies
name a volume that has since given the fragment up. The truth for an index is the volume
whose own row names itself there; failing that, a named volume that did not answer (it
may hold it); a named volume that answered without a row holds nothing (unless the
caller knows better: see `held_by`).
"""

from __future__ import annotations

import asyncio

from gateway.objects.cluster import Cluster
from shardgate.manifest import PartManifest


def part_of(row: dict) -> PartManifest:
    """A part row's manifest, as a volume lists it."""
    raw = row["manifest"]
    return PartManifest(**{**raw, "placement": tuple(raw["placement"])})


async def read_part_rows(cluster: Cluster, upload_id: str, volumes: list[str] | tuple[str, ...]
                         ) -> tuple[set[str], dict[str, dict[str, PartManifest]]]:
    """Ask `volumes` for the upload's part rows: the volumes that answered, and every part
    version (by archive tag) with each answering volume's copy of its row."""
    answers = await asyncio.gather(*(cluster.volumes.list_parts(vid, upload_id)
                                     for vid in volumes), return_exceptions=True)
    answered: set[str] = set()
    copies: dict[str, dict[str, PartManifest]] = {}
    for vid, rows in zip(volumes, answers, strict=True):
        if isinstance(rows, BaseException):
            continue
        answered.add(vid)
        for row in rows:
            part = part_of(row)
            copies.setdefault(part.archive_tag, {})[vid] = part
    return answered, copies


def held_by(copies: dict[str, PartManifest], answered: set[str],
            may_hold: frozenset[str] = frozenset()) -> tuple[str | None, ...]:
    """The holder of each fragment index of one part version, from the rows (`copies`,
    by volume) that the volumes which `answered` list; None where no volume holds it.
    A named volume in `may_hold` keeps its index though it answered without the row: a
    Complete passes the key's placement, whose volumes keep the archive of a part
    uploaded again until the upload ends (and report it missing at Complete if not)."""
    width = len(next(iter(copies.values())).placement)
    holders: list[str | None] = []
    for index in range(width):
        own = sorted(vid for vid, part in copies.items() if part.placement[index] == vid)
        if own:
            holders.append(own[0])
            continue
        named = sorted(name for part in copies.values()
                       if (name := part.placement[index]) is not None
                       and (name not in answered or name in may_hold))
        holders.append(named[0] if named else None)
    return tuple(holders)
