"""Version tombstones: a version deleted by its id stays deleted on every volume.

Deleting one version (DELETE ?versionId=) first writes a tombstone for it on the write
quorum; only a tombstone the gateway has declared durable removes the row, whose
archives are then retired like a superseded version's. Readers treat a tombstone as a
version that must never be served, so a volume that missed the delete cannot bring the
version back; a late commit or repair of it is refused; the healer rolls a tombstone
forward, never the version. Tombstones are kept (a few bytes each), never collected by
age. Functions run on the index's threads (`fn(conn, ...)`).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from volume_server.attributes import drop_attributes


def is_forgotten(conn: sqlite3.Connection, incarnation: str, key: str,
                 version_id: str) -> bool:
    return conn.execute("SELECT 1 FROM version_tombstones WHERE incarnation=? AND key=? AND"
                        " version_id=?", (incarnation, key, version_id)).fetchone() is not None


def forgotten_entries(conn: sqlite3.Connection, incarnation: str, key: str
                      ) -> list[dict[str, Any]]:
    """The key's tombstones as the read rule sees them: versions never to be served."""
    rows = conn.execute("SELECT version_id, durable FROM version_tombstones WHERE"
                        " incarnation=? AND key=?", (incarnation, key))
    return [{"version_id": r[0], "forgotten": True, "deleted": False,
             "durable": bool(r[1]), "manifest": {}, "attributes": {}} for r in rows]


def forget(conn: sqlite3.Connection, incarnation: str, key: str, version_id: str,
           durable: bool, now: float) -> tuple[bool, set[str]]:
    """Record the tombstone (durable once the gateway says so: then the row goes too).
    -> (whether this volume held the version, archive ids it no longer owns)."""
    conn.execute("INSERT INTO version_tombstones (incarnation, key, version_id, durable,"
                 " created) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET"
                 " durable=max(durable, excluded.durable)",
                 (incarnation, key, version_id, int(durable), now))
    found = conn.execute("SELECT id, archives FROM objects WHERE incarnation=? AND key=? AND"
                         " version_id=?", (incarnation, key, version_id)).fetchone()
    if found is None or not durable:
        return found is not None, set()
    owned = set(json.loads(found["archives"]))
    conn.executemany("DELETE FROM object_archives WHERE archive_id=? AND object_id=?",
                     [(a, found["id"]) for a in owned])
    conn.execute("DELETE FROM objects WHERE id=?", (found["id"],))
    drop_attributes(conn, incarnation, key, [version_id])
    return True, owned


def scan_durable(conn: sqlite3.Connection, after: tuple[str, str, str],
                 limit: int) -> list[dict[str, str]]:
    """Durable tombstones in (incarnation, key, version_id) order after `after` (the
    rebalancer's walk: they go with the keys whose placement changed)."""
    rows = conn.execute("SELECT incarnation, key, version_id FROM version_tombstones WHERE"
                        " durable=1 AND (incarnation, key, version_id) > (?, ?, ?)"
                        " ORDER BY incarnation, key, version_id LIMIT ?", (*after, limit))
    return [{"incarnation": r[0], "key": r[1], "version_id": r[2]} for r in rows]


def pending_tombstones(conn: sqlite3.Connection, before: float) -> list[dict[str, Any]]:
    """Tombstones still waiting for their durable notice (the deleting gateway died)."""
    rows = conn.execute(
        "SELECT incarnation, key, version_id FROM version_tombstones t WHERE durable=0 AND"
        " created < ? AND NOT EXISTS (SELECT 1 FROM heal_queue h WHERE"
        " h.incarnation=t.incarnation AND h.key=t.key AND h.version_id=t.version_id)"
        " LIMIT 1000", (before,))
    return [dict(r) for r in rows]
