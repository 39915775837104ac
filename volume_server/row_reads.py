"""Object rows read back: the evidence the gateway's read rule weighs (`latest`), one
version by id, inline fragments, and the walks of the healer and the scrubber.

These functions run on the index's reader threads (`fn(conn, ...)`) and change nothing;
what a commit writes and supersedes is catalog.py's.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from volume_server.attributes import attributes_of
from volume_server.tombstones import forgotten_entries, is_forgotten


def nulls(conn: sqlite3.Connection, incarnation: str, key: str) -> list[dict[str, Any]]:
    """The key's null rows, newest first down to the newest durable one, and its
    tombstones: the read rule's evidence for `versionId=null`."""
    return latest_rows(conn, incarnation, key, "AND null_version=1")


def highest_version_id(conn: sqlite3.Connection) -> str:
    """The largest version id of any row: superseding only drops rows below a kept one,
    so this is the highest version this volume ever committed ("" if none)."""
    found = conn.execute("SELECT MAX(version_id) FROM objects").fetchone()
    return found[0] or ""


def latest(conn: sqlite3.Connection, incarnation: str, key: str, with_inline: bool = False
           ) -> list[dict[str, Any]]:
    """The key's rows from the newest down to the newest durable one, newest first, and
    its version tombstones: the evidence the gateway's read rule weighs (pending rows may
    never reach a quorum; a tombstoned version is never served). `with_inline` adds the
    fragments this volume keeps inline for the newest row, so a small object's GET needs
    no second round trip."""
    versions = latest_rows(conn, incarnation, key)
    if with_inline:
        attach_inline(conn, incarnation, key, versions)
    return versions


def latest_many(conn: sqlite3.Connection, keys: list[tuple[str, str, bool]]
                ) -> list[list[dict[str, Any]]]:
    """`latest` of each (incarnation, key, with_inline), read in one transaction."""
    return [latest(conn, incarnation, key, with_inline)
            for incarnation, key, with_inline in keys]


def attach_inline(conn: sqlite3.Connection, incarnation: str, key: str,
                  versions: list[dict[str, Any]]) -> None:
    """Give the newest row (not a tombstone, not a delete marker) an `inline` map of
    archive id -> fragment bytes, when its one part is kept inline here."""
    newest = next((v for v in versions if not v.get("forgotten")), None)
    if newest is None or newest["deleted"]:
        return
    parts = newest["manifest"].get("parts", [])
    if len(parts) != 1 or not parts[0].get("inline"):
        return
    found = conn.execute("SELECT archives FROM objects WHERE incarnation=? AND key=? AND"
                         " version_id=?", (incarnation, key, newest["version_id"])).fetchone()
    held = {}
    for archive in json.loads(found[0]) if found else []:
        data = inline_archive(conn, archive)
        if data is not None:
            held[archive] = data
    newest["inline"] = held


def latest_rows(conn: sqlite3.Connection, incarnation: str, key: str, only: str = ""
                ) -> list[dict[str, Any]]:
    """`latest`, over the rows that `only` (an SQL condition) admits."""
    gone = forgotten_entries(conn, incarnation, key)
    skip = {g["version_id"] for g in gone}
    found = conn.execute(
        "SELECT version_id, deleted, durable, manifest FROM objects WHERE incarnation=? AND"
        f" key=? {only} ORDER BY version_id DESC", (incarnation, key))
    versions = list(gone)
    for row in found:  # read lazily: stops at the newest durable row
        if row["version_id"] in skip:
            continue
        versions.append({"version_id": row["version_id"], "deleted": bool(row["deleted"]),
                         "durable": bool(row["durable"]),
                         "manifest": json.loads(row["manifest"]),
                         "attributes": attributes_of(conn, incarnation, key,
                                                     row["version_id"])})
        if row["durable"]:
            break
    versions.sort(key=lambda v: v["version_id"], reverse=True)
    return versions


def newest_durable(conn: sqlite3.Connection, keys: list[tuple[str, str]]
                   ) -> list[str]:
    """For each (incarnation, key), the newest durable version id here ("" if none): what
    the index comparison sets side by side across a placement."""
    out = []
    for incarnation, key in keys:
        found = conn.execute("SELECT MAX(version_id) FROM objects WHERE incarnation=? AND"
                             " key=? AND durable=1", (incarnation, key)).fetchone()
        out.append(found[0] or "")
    return out


def owned_archives(conn: sqlite3.Connection, after: str, limit: int) -> list[str]:
    """Archive ids some object row owns, in id order after `after`."""
    rows = conn.execute("SELECT DISTINCT archive_id FROM object_archives WHERE archive_id > ?"
                        " ORDER BY archive_id LIMIT ?", (after, limit))
    return [r[0] for r in rows]


def scan_keys(conn: sqlite3.Connection, after_id: int, limit: int) -> list[dict[str, Any]]:
    """Which versions this volume holds, in id order (the healer's rebuild walk)."""
    rows = conn.execute("SELECT id, incarnation, key, version_id FROM objects WHERE id > ?"
                        " ORDER BY id LIMIT ?", (after_id, limit))
    return [dict(r) for r in rows]


def scan_rows(conn: sqlite3.Connection, after_id: int, limit: int) -> list[dict[str, Any]]:
    """Object rows in id order after `after_id` (the scrubber's and the healer's walk)."""
    rows = conn.execute(
        "SELECT id, incarnation, key, version_id, deleted, durable, manifest FROM objects"
        " WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit))
    return [{"id": r["id"], "incarnation": r["incarnation"], "key": r["key"],
             "version_id": r["version_id"], "deleted": bool(r["deleted"]),
             "durable": bool(r["durable"]), "manifest": json.loads(r["manifest"])}
            for r in rows]


def version(conn: sqlite3.Connection, incarnation: str, key: str,
            version_id: str) -> dict[str, Any] | None:
    """One row by version id (the healer's view of what this volume holds); a tombstoned
    version answers as forgotten."""
    if is_forgotten(conn, incarnation, key, version_id):
        return next(g for g in forgotten_entries(conn, incarnation, key)
                    if g["version_id"] == version_id) | {"archives": []}
    row = conn.execute(
        "SELECT version_id, deleted, durable, manifest, archives FROM objects WHERE"
        " incarnation=? AND key=? AND version_id=?", (incarnation, key, version_id)).fetchone()
    if row is None:
        return None
    return {"version_id": row["version_id"], "deleted": bool(row["deleted"]),
            "durable": bool(row["durable"]), "manifest": json.loads(row["manifest"]),
            "archives": json.loads(row["archives"]),
            "attributes": attributes_of(conn, incarnation, key, version_id)}


def inline_archive(conn: sqlite3.Connection, archive_id: str) -> bytes | None:
    found = conn.execute("SELECT data FROM inline_archives WHERE archive_id=?",
                         (archive_id,)).fetchone()
    return None if found is None else bytes(found[0])
