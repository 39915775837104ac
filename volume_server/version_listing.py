"""One volume's page of ListObjectVersions: every version, delete marker and version
tombstone of a bucket in (key, newest first) order, with common prefixes rolled up.

Tombstones are listed too, so the gateway can leave out a version that another volume,
one that missed its deletion, still lists. The gateway merges the volumes' pages and
decides which versions are proven (gateway/objects/version_merge.py).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from volume_server.listing import MAX_LIMIT, _rollup, successor

_COLUMNS = """
SELECT key, version_id, deleted, durable, null_version, size, etag, last_modified, owner,
       coalesce(json_extract(manifest, '$.delete_marker'), 0) AS marker, 0 AS forgotten
FROM objects o WHERE incarnation=:inc AND {range} AND NOT EXISTS (
    SELECT 1 FROM version_tombstones t WHERE t.incarnation=o.incarnation AND t.key=o.key
    AND t.version_id=o.version_id)
UNION ALL
SELECT key, version_id, 0, durable, 0, 0, '', 0, '', 0, 1
FROM version_tombstones WHERE incarnation=:inc AND {range}
ORDER BY key, version_id DESC LIMIT :limit
"""


def _entry(row: sqlite3.Row) -> dict[str, Any]:
    return {"key": row["key"], "version_id": row["version_id"],
            "deleted": bool(row["deleted"]), "durable": bool(row["durable"]),
            "null": bool(row["null_version"]), "marker": bool(row["marker"]),
            "forgotten": bool(row["forgotten"]), "size": row["size"], "etag": row["etag"],
            "last_modified": row["last_modified"], "owner": row["owner"]}


def _null_id(conn: sqlite3.Connection, incarnation: str, key: str) -> str | None:
    found = conn.execute("SELECT MAX(version_id) FROM objects WHERE incarnation=? AND key=?"
                         " AND null_version=1", (incarnation, key)).fetchone()
    return found[0]


def list_versions(conn: sqlite3.Connection, incarnation: str, prefix: str = "",
                  key_marker: str = "", version_marker: str = "", delimiter: str = "",
                  limit: int = MAX_LIMIT) -> dict[str, Any]:
    """{"entries": [...], "truncated": bool}: entries are versions (see _entry) or
    {"prefix": ...}, in order, starting after (key_marker, version_marker)."""
    limit = min(limit, MAX_LIMIT)
    if limit <= 0:
        return {"entries": [], "truncated": False}
    high = successor(prefix) if prefix else None
    if version_marker == "null":
        version_marker = _null_id(conn, incarnation, key_marker) or ""
    # The position after which to list: inside key_marker's versions, or after the key.
    key, below = (key_marker, version_marker) if version_marker else (key_marker, None)
    if key < prefix:
        key, below = prefix, None
        inclusive = True
    else:
        inclusive = False
    entries: list[dict[str, Any]] = []
    while len(entries) <= limit:
        if below is not None:
            where = "((key = :key AND version_id < :below) OR key > :key)"
        else:
            where = "key >= :key" if inclusive else "key > :key"
        if high is not None:
            where += " AND key < :high"
        args = {"inc": incarnation, "key": key, "below": below, "high": high,
                "limit": limit + 1 - len(entries)}
        restart = False
        for row in conn.execute(_COLUMNS.format(range=where), args):
            rolled = _rollup(row["key"], prefix, delimiter)
            if rolled is not None:
                if rolled != key_marker:
                    entries.append({"prefix": rolled})
                after = successor(rolled)
                if after is not None and len(entries) <= limit:
                    key, below, inclusive, restart = after, None, True, True
                break
            entries.append(_entry(row))
        if not restart:
            break
    truncated = len(entries) > limit
    return {"entries": entries[:limit], "truncated": truncated}
