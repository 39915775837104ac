"""ListObjectVersions across volumes: merge each volume's (key, newest first) page.

Each volume lists every version, delete marker and version tombstone it holds, in key
order and each key's newest first (volume_server/version_listing.py). For each key the
gateway gathers what every volume listed and keeps a version only when it is proven (a
volume holds it as durable, or the write quorum of the key's placement lists it) and no
volume holds a tombstone for it: the same evidence the read rule weighs for GET. The
newest proven version, delete markers included, is the latest; of the null versions only
the newest is listed (it replaces the others). Plain removals in a never-versioned bucket
are not listed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from gateway.errors import quorum_lost
from gateway.objects.cluster import Cluster

PAGE = 1000


@dataclass(frozen=True)
class ListedVersion:
    key: str
    version_id: str  # the internal, time-ordered id
    public_id: str  # what clients see ("null" for a null version)
    latest: bool
    delete_marker: bool
    size: int
    etag: str
    last_modified: float
    owner: str


@dataclass
class VersionPage:
    entries: list[ListedVersion | str] = field(default_factory=list)  # str: a prefix
    truncated: bool = False
    next_key: str = ""
    next_version: str = ""


def _order(entry: dict) -> tuple[str, str]:
    """(name, key's newest version first): the order every volume lists in."""
    if "prefix" in entry:
        return entry["prefix"], ""
    inverted = "".join("fedcba9876543210"[int(c, 16)] for c in entry["version_id"])
    return entry["key"], inverted


class _Cursor:
    def __init__(self, volume_id: str, key_marker: str, version_marker: str) -> None:
        self.volume_id = volume_id
        self.key_marker, self.version_marker = key_marker, version_marker
        self.buffer: list[dict] = []
        self.more = True
        self.down = False


async def merge_versions(cluster: Cluster, incarnation: str, prefix: str, delimiter: str,
                         key_marker: str, version_marker: str, max_keys: int) -> VersionPage:
    """One page of at most `max_keys` versions, delete markers and common prefixes."""
    cursors = [_Cursor(vid, key_marker, version_marker) for vid in cluster.placed_ids]
    limit = min(PAGE, max(max_keys + 1, 10))

    async def refill(cursor: _Cursor) -> None:
        try:
            page = await cluster.volumes.list_versions(
                cursor.volume_id, incarnation, prefix, cursor.key_marker,
                cursor.version_marker, delimiter, limit)
        except Exception:  # noqa: BLE001 - a volume down or rebuilding: counted below
            cursor.more, cursor.down = False, True
            return
        cursor.buffer = page["entries"]
        cursor.more = bool(page["truncated"]) and bool(cursor.buffer)
        if cursor.buffer:
            last = cursor.buffer[-1]
            cursor.key_marker = last.get("prefix", last.get("key", ""))
            cursor.version_marker = last.get("version_id", "")

    async def fill() -> None:
        await asyncio.gather(*(refill(c) for c in cursors if not c.buffer and c.more))
        if sum(c.down for c in cursors) > cluster.width - cluster.write_quorum:
            raise quorum_lost("Too few storage volumes answered the listing.")

    page = VersionPage()
    while True:
        await fill()
        live = [c for c in cursors if c.buffer]
        if not live:
            return page
        name = min(_order(c.buffer[0])[0] for c in live)
        held: dict[str, list[dict]] = {}
        is_prefix = False
        for cursor in cursors:
            while cursor.buffer and _order(cursor.buffer[0])[0] == name:
                entry = cursor.buffer.pop(0)
                if "prefix" in entry:
                    is_prefix = True
                else:
                    held.setdefault(cursor.volume_id, []).append(entry)
                if not cursor.buffer and cursor.more:
                    await refill(cursor)  # this key's versions may go on in the next page
        shown = [name] if is_prefix else _proven(cluster, incarnation, name, held)
        for item in shown:
            if len(page.entries) >= max_keys:
                page.truncated = True
                return page
            page.entries.append(item)
            page.next_key = name
            page.next_version = "" if isinstance(item, str) else item.version_id


def _proven(cluster: Cluster, incarnation: str, key: str,
            held: dict[str, list[dict]]) -> list[ListedVersion]:
    """The key's listed versions, newest first (see the module docstring)."""
    placement = set(cluster.placement(incarnation, key))
    forgotten = {e["version_id"] for rows in held.values() for e in rows if e["forgotten"]}
    holders: dict[str, int] = {}
    rows: dict[str, dict] = {}
    durable: set[str] = set()
    for volume_id, entries in held.items():
        for entry in entries:
            vid = entry["version_id"]
            if vid in forgotten:
                continue
            rows.setdefault(vid, entry)
            if volume_id in placement:
                holders[vid] = holders.get(vid, 0) + 1
            if entry["durable"]:
                durable.add(vid)
    proven = sorted((vid for vid in rows
                     if vid in durable or holders.get(vid, 0) >= cluster.write_quorum),
                    reverse=True)
    out = []
    null_seen = False
    for n, vid in enumerate(proven):
        entry = rows[vid]
        if entry["null"]:
            if null_seen:
                continue  # replaced by the newer null version (its notice may be out)
            null_seen = True
        if entry["deleted"] and not entry["marker"]:
            continue  # a plain removal (never-versioned bucket): nothing to list
        out.append(ListedVersion(key, vid, "null" if entry["null"] else vid, n == 0,
                                 entry["deleted"], entry["size"], entry["etag"],
                                 entry["last_modified"], entry["owner"]))
    return out
