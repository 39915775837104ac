"""Listing across volumes: merge each volume's sorted page into one S3 page.

Every volume answers keys it holds in order (each key's rows down to its newest durable
one, tombstones included, common prefixes rolled up). A page asks all but write quorum
- 1 volumes: every committed key is on at least the write quorum of its placement, so
one of them still holds it. A volume of those that fails, or a key whose pending rows
the read rule cannot decide from them, sends the page to every volume instead. The
gateway heap-merges the pages,
picks each key's current version by the same read rule as GET (so a pending tombstone on
one volume never hides a key that GET returns), drops tombstones, dedupes prefixes, and
pulls further pages from a volume only when its buffer runs dry.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

from gateway.errors import quorum_lost
from gateway.objects.cluster import Cluster
from gateway.objects.read_rule import Undecided, decide

PAGE = 1000


@dataclass
class ListedKey:
    key: str
    version_id: str
    size: int
    etag: str
    last_modified: float
    owner: str


@dataclass
class ListPage:
    keys: list[ListedKey] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    truncated: bool = False
    last: str = ""  # the last key or prefix returned, for the next marker


class _Cursor:
    def __init__(self, volume_id: str, start_after: str) -> None:
        self.volume_id = volume_id
        self.after = start_after
        self.buffer: list[dict] = []
        self.more = True
        self.down = False

    def head_name(self) -> str:
        entry = self.buffer[0]
        return entry["prefix"] if "prefix" in entry else entry["key"]


class _Incomplete(Exception):
    """The volumes asked cannot answer the page alone: ask every volume."""


def listing_volumes(cluster: Cluster) -> list[str]:
    """The volumes a page asks first: all but write quorum - 1, those that just failed to
    answer left out first, the others in turn from page to page (spreading the load)."""
    ids = cluster.placed_ids
    need = len(ids) - (cluster.write_quorum - 1)
    if need >= len(ids):
        return list(ids)
    turn = next(_TURNS) % len(ids)
    rotated = ids[turn:] + ids[:turn]
    return sorted(rotated, key=cluster.suspect)[:need]


_TURNS = itertools.count()


async def merge_list(cluster: Cluster, incarnation: str, prefix: str, delimiter: str,
                     start_after: str, max_keys: int) -> ListPage:
    """One page of at most max_keys keys + prefixes after `start_after`."""
    chosen = listing_volumes(cluster)
    if len(chosen) < len(cluster.placed_ids):
        try:
            return await _merge(cluster, chosen, incarnation, prefix, delimiter,
                                start_after, max_keys)
        except _Incomplete:
            pass
    return await _merge(cluster, cluster.placed_ids, incarnation, prefix, delimiter,
                        start_after, max_keys)


async def _merge(cluster: Cluster, volume_ids: list[str], incarnation: str, prefix: str,
                 delimiter: str, start_after: str, max_keys: int) -> ListPage:
    partial = len(volume_ids) < len(cluster.placed_ids)
    unasked = set(cluster.placed_ids) - set(volume_ids)
    cursors = [_Cursor(vid, start_after) for vid in volume_ids]
    down = 0
    limit = min(PAGE, max(max_keys + 1, 10))

    async def refill(cursor: _Cursor) -> None:
        nonlocal down
        try:
            page = await cluster.volumes.list_objects(cursor.volume_id, incarnation, prefix,
                                                      cursor.after, delimiter, limit)
        except Exception as exc:
            if partial:
                raise _Incomplete from exc
            down += 1
            cursor.more = False
            cursor.down = True
            return
        cursor.buffer = page["entries"]
        cursor.more = bool(page.get("truncated"))
        if page.get("next"):
            # A volume resumes after a whole rolled-up prefix when given one.
            cursor.after = page["next"]
        if not cursor.buffer:
            cursor.more = False

    result = ListPage()
    while True:
        await asyncio.gather(*(refill(c) for c in cursors if not c.buffer and c.more))
        # Every committed key is on >= quorum of its placement; with more than
        # width - quorum volumes missing, some key might have no answering holder.
        if down > cluster.width - cluster.write_quorum:
            raise quorum_lost("Too few storage volumes answered the listing.")
        live = [c for c in cursors if c.buffer]
        if not live:
            return result
        name = min(c.head_name() for c in live)
        listed = {c.volume_id: c.buffer.pop(0) for c in live if c.head_name() == name}
        entries = list(listed.values())
        newest = None
        if "prefix" not in entries[0]:
            try:
                newest = _current(cluster, incarnation, name, listed,
                                  {c.volume_id for c in cursors if c.down} | unasked)
            except _Incomplete:
                if partial:
                    raise
                raise quorum_lost("Too few storage volumes answered the listing.") from None
            if newest is None or newest["deleted"]:
                continue
        if len(result.keys) + len(result.prefixes) >= max_keys:
            result.truncated = True
            return result
        if newest is None:
            if not any(e.get("settled", True) for e in entries) and not (
                    await merge_list(cluster, incarnation, name, "", "", 1)).keys:
                continue  # only pending rows under it, and none is current
            result.prefixes.append(name)
            result.last = name
            continue
        result.keys.append(ListedKey(name, newest["version_id"], newest["size"],
                                     newest["etag"], newest["last_modified"], newest["owner"]))
        result.last = name


def _current(cluster: Cluster, incarnation: str, key: str, listed: dict[str, dict],
             down: set[str]) -> dict | None:
    """The key's current version among what the volumes listed (None: skip the key).

    Settled keys (every volume lists one durable row) take the newest at once. With a
    pending row anywhere, the read rule decides over the key's placement: a volume of
    it that answered the listing without the key counts as an answer without it. When
    the answers cannot decide, the listing is a 503, as a GET of the key would be."""
    versions = [v for entry in listed.values() if "versions" in entry
                for v in entry["versions"]]
    if not versions:
        return None
    if all(v["durable"] for v in versions):
        return max(versions, key=lambda v: v["version_id"])
    answers = [listed[vid]["versions"] if vid in listed else []
               for vid in cluster.placement(incarnation, key) if vid not in down]
    try:
        return decide(answers, cluster.width, cluster.write_quorum).current \
            or _tombstone()
    except Undecided as exc:
        raise _Incomplete from exc


def _tombstone() -> dict:
    """What `decide` means by None: the key does not exist."""
    return {"deleted": True}
