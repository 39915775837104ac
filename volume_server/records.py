"""Bucket records and the heal queue in SQLite (uploads and parts are in uploads.py).

Like catalog.py these run on the index's reader or writer threads.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any


def _bucket(row: sqlite3.Row) -> dict[str, Any]:
    return {"name": row["name"], "owner": row["owner"], "incarnation": row["incarnation"],
            "created": row["created"], "deleted": bool(row["deleted"]), "stamp": row["stamp"]}


def put_bucket(conn: sqlite3.Connection, rec: dict[str, Any]) -> bool:
    """Upsert; an older or equal stamp leaves the stored record alone."""
    cur = conn.execute(
        "INSERT INTO buckets (name, owner, incarnation, created, deleted, stamp)"
        " VALUES (:name, :owner, :incarnation, :created, :deleted, :stamp)"
        " ON CONFLICT (name) DO UPDATE SET owner=excluded.owner,"
        " incarnation=excluded.incarnation, created=excluded.created,"
        " deleted=excluded.deleted, stamp=excluded.stamp WHERE excluded.stamp > buckets.stamp",
        {**rec, "deleted": int(rec["deleted"])},
    )
    return cur.rowcount > 0


def get_bucket(conn: sqlite3.Connection, name: str) -> dict[str, Any] | None:
    """The record with the settings of its incarnation ({setting: {"stamp", "value"}})."""
    row = conn.execute("SELECT * FROM buckets WHERE name=?", (name,)).fetchone()
    if row is None:
        return None
    settings = conn.execute("SELECT setting, stamp, value FROM bucket_settings WHERE name=?"
                            " AND incarnation=?", (name, row["incarnation"]))
    return {**_bucket(row), "settings": {s[0]: {"stamp": s[1], "value": json.loads(s[2])}
                                         for s in settings}}


def put_setting(conn: sqlite3.Connection, name: str, incarnation: str, setting: str,
                stamp: int, value: Any) -> bool:
    """Keep a bucket setting's value unless a newer stamp is held (per setting, so a
    change of tags and one of versioning never undo each other)."""
    cur = conn.execute(
        "INSERT INTO bucket_settings (name, incarnation, setting, stamp, value)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (name, incarnation, setting)"
        " DO UPDATE SET stamp=excluded.stamp, value=excluded.value"
        " WHERE excluded.stamp > bucket_settings.stamp",
        (name, incarnation, setting, stamp, json.dumps(value)))
    return cur.rowcount > 0


def list_buckets(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [_bucket(r) for r in conn.execute("SELECT * FROM buckets ORDER BY name")]


def get_state(conn: sqlite3.Connection, name: str) -> str | None:
    found = conn.execute("SELECT value FROM volume_state WHERE name=?", (name,)).fetchone()
    return None if found is None else found[0]


def set_state(conn: sqlite3.Connection, name: str, value: str) -> None:
    conn.execute("INSERT OR REPLACE INTO volume_state (name, value) VALUES (?, ?)",
                 (name, value))


def get_peers(conn: sqlite3.Connection) -> dict[str, str]:
    return {r[0]: r[1] for r in conn.execute("SELECT volume_id, data_id FROM peers")}


def put_peers(conn: sqlite3.Connection, peers: dict[str, str], now: float) -> None:
    conn.executemany("INSERT OR REPLACE INTO peers (volume_id, data_id, stamp)"
                     " VALUES (?, ?, ?)", [(v, d, now) for v, d in peers.items()])


def drop_heal(conn: sqlite3.Connection, incarnation: str, key: str, version_id: str,
              up_to: int) -> int:
    """Remove a version's heal entries once it is healed (those queued up to id `up_to`:
    an entry queued during the heal stays for the next round)."""
    return conn.execute("DELETE FROM heal_queue WHERE incarnation=? AND key=? AND"
                        " version_id=? AND id<=?",
                        (incarnation, key, version_id, up_to)).rowcount


def heal_depth(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM heal_queue").fetchone()[0]


def list_heal(conn: sqlite3.Connection, limit: int = 1 << 31) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT * FROM heal_queue ORDER BY id LIMIT ?", (limit,))
    return [{"id": r["id"], "incarnation": r["incarnation"], "key": r["key"],
             "version_id": r["version_id"],
             "archive_id": r["archive_id"], "index": r["idx"], "reason": r["reason"],
             "queued": r["queued"]} for r in rows]


# Operator views (`GET /status`, `GET /heal/versions`, `/metrics`): counts only, so a
# status poll stays cheap however many rows the volume holds.

def status_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Object rows, pending rows (no durable notice yet), retired archives waiting for
    their grace to end, heal entries and the distinct versions they name."""

    def count(sql: str) -> int:
        return conn.execute(sql).fetchone()[0]

    return {
        "objects": count("SELECT COUNT(*) FROM objects"),
        "pending": count("SELECT COUNT(*) FROM objects WHERE durable=0"),
        "retired": count("SELECT COUNT(*) FROM retired"),
        "heal_depth": count("SELECT COUNT(*) FROM heal_queue"),
        "heal_versions": count("SELECT COUNT(*) FROM (SELECT DISTINCT incarnation, key,"
                               " version_id FROM heal_queue)"),
    }


def heal_of(conn: sqlite3.Connection, incarnation: str,
            limit: int) -> tuple[list[dict[str, Any]], int]:
    """One bucket incarnation's heal entries (oldest first, up to `limit`) and their count."""
    depth = conn.execute("SELECT COUNT(*) FROM heal_queue WHERE incarnation=?",
                         (incarnation,)).fetchone()[0]
    rows = conn.execute("SELECT * FROM heal_queue WHERE incarnation=? ORDER BY id LIMIT ?",
                        (incarnation, limit))
    return [{"id": r["id"], "incarnation": r["incarnation"], "key": r["key"],
             "version_id": r["version_id"], "archive_id": r["archive_id"], "index": r["idx"],
             "reason": r["reason"], "queued": r["queued"]} for r in rows], depth


def heal_versions(conn: sqlite3.Connection, limit: int,
                  incarnation: str | None = None) -> tuple[list[dict[str, Any]], bool]:
    """The distinct versions with heal entries, oldest first, each with its entry count and
    the fragment indexes its entries name; and whether more than `limit` exist."""
    where, args = ("WHERE incarnation=?", (incarnation,)) if incarnation else ("", ())
    rows = conn.execute(
        "SELECT incarnation, key, version_id, COUNT(*) AS entries,"
        " group_concat(DISTINCT idx) AS indexes FROM heal_queue " + where +
        " GROUP BY incarnation, key, version_id ORDER BY MIN(id) LIMIT ?",
        (*args, limit + 1)).fetchall()
    versions = [{"incarnation": r["incarnation"], "key": r["key"],
                 "version_id": r["version_id"], "entries": r["entries"],
                 "indexes": sorted(int(i) for i in r["indexes"].split(","))
                 if r["indexes"] else []} for r in rows[:limit]]
    return versions, len(rows) > limit
