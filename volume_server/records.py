"""Bucket records, multipart uploads and their parts, and the heal queue in SQLite.

Like catalog.py these run on the index's threads; functions that can leave an archive
without an owner return the ids whose files the caller unlinks after the commit.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from volume_server.catalog import release


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
    row = conn.execute("SELECT * FROM buckets WHERE name=?", (name,)).fetchone()
    return None if row is None else _bucket(row)


def list_buckets(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [_bucket(r) for r in conn.execute("SELECT * FROM buckets ORDER BY name")]


def _upload(row: sqlite3.Row) -> dict[str, Any]:
    return {"incarnation": row["incarnation"], "bucket": row["bucket"], "key": row["key"],
            "upload_id": row["upload_id"], "initiated": row["initiated"],
            "owner": row["owner"], "manifest": json.loads(row["manifest"])}


def put_upload(conn: sqlite3.Connection, rec: dict[str, Any]) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO uploads (upload_id, incarnation, bucket, key, initiated,"
        " owner, manifest) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (rec["upload_id"], rec["incarnation"], rec["bucket"], rec["key"], rec["initiated"],
         rec["owner"], json.dumps(rec["manifest"])),
    )


def get_upload(conn: sqlite3.Connection, upload_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM uploads WHERE upload_id=?", (upload_id,)).fetchone()
    return None if row is None else _upload(row)


def list_uploads(conn: sqlite3.Connection, incarnation: str, prefix: str) -> list[dict[str, Any]]:
    """Uploads in (key, initiated) order; an empty incarnation means every bucket."""
    sql = "SELECT * FROM uploads WHERE substr(key, 1, ?) = ?"
    args: list[Any] = [len(prefix), prefix]
    if incarnation:
        sql += " AND incarnation=?"
        args.append(incarnation)
    sql += " ORDER BY incarnation, key, initiated, upload_id"
    return [_upload(r) for r in conn.execute(sql, args)]


def list_parts(conn: sqlite3.Connection, upload_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT part_number, archive_id, manifest FROM parts WHERE upload_id=?"
        " ORDER BY part_number", (upload_id,))
    return [{"part_number": r["part_number"], "archive_id": r["archive_id"],
             "manifest": json.loads(r["manifest"])} for r in rows]


def part_archive(conn: sqlite3.Connection, upload_id: str, part_number: int) -> str | None:
    row = conn.execute("SELECT archive_id FROM parts WHERE upload_id=? AND part_number=?",
                       (upload_id, part_number)).fetchone()
    return None if row is None else row[0]


def commit_part(conn: sqlite3.Connection, upload_id: str, part_number: int, archive_id: str,
                manifest: dict[str, Any]) -> list[str]:
    """Upsert the part row; the archive of a replaced row is released."""
    old = part_archive(conn, upload_id, part_number)
    conn.execute(
        "INSERT OR REPLACE INTO parts (upload_id, part_number, archive_id, manifest)"
        " VALUES (?, ?, ?, ?)", (upload_id, part_number, archive_id, json.dumps(manifest)))
    if old is None or old == archive_id:
        return []
    return release(conn, {old})


def delete_upload(conn: sqlite3.Connection, upload_id: str, keep_archives: bool) -> list[str]:
    archives = {r[0] for r in conn.execute("SELECT archive_id FROM parts WHERE upload_id=?",
                                           (upload_id,))}
    conn.execute("DELETE FROM parts WHERE upload_id=?", (upload_id,))
    conn.execute("DELETE FROM uploads WHERE upload_id=?", (upload_id,))
    return [] if keep_archives else release(conn, archives)


def list_heal(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT * FROM heal_queue ORDER BY id")
    return [{"incarnation": r["incarnation"], "key": r["key"], "version_id": r["version_id"],
             "archive_id": r["archive_id"], "index": r["idx"], "reason": r["reason"],
             "queued": r["queued"]} for r in rows]
