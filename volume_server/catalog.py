"""Object rows and archive ownership: what a commit inserts and what it supersedes.

These functions run on the index's writer or reader threads (`fn(conn, ...)`). An archive
is removed only when no object row, no part row and no upload (a replaced part it keeps
until Complete or Abort) owns it any more; the functions return the ids whose files the
caller must unlink once the transaction has committed.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ObjectRow:
    incarnation: str
    key: str
    version_id: str
    deleted: bool
    manifest: dict[str, Any]
    size: int
    etag: str
    last_modified: float
    owner: str
    archives: tuple[str, ...] = ()


@dataclass(frozen=True)
class HealEntry:
    archive_id: str | None
    index: int | None
    reason: str


@dataclass(frozen=True)
class ObjectCommit:
    row: ObjectRow
    versioned: bool = False
    inline: tuple[str, bytes] | None = None
    heal: tuple[HealEntry, ...] = ()
    queued: float = 0.0


def is_committed(conn: sqlite3.Connection, incarnation: str, key: str, version_id: str) -> bool:
    found = conn.execute(
        "SELECT 1 FROM objects WHERE incarnation=? AND key=? AND version_id=?",
        (incarnation, key, version_id),
    ).fetchone()
    return found is not None


def is_owned(conn: sqlite3.Connection, archive_id: str) -> bool:
    """True while an object row, a part row or an upload still refers to the archive."""
    found = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM object_archives WHERE archive_id=?)"
        " OR EXISTS (SELECT 1 FROM parts WHERE archive_id=?)"
        " OR EXISTS (SELECT 1 FROM upload_archives WHERE archive_id=?)",
        (archive_id, archive_id, archive_id),
    ).fetchone()
    return bool(found[0])


def release(conn: sqlite3.Connection, archive_ids: set[str]) -> list[str]:
    """Drop the inline copies of archives nobody owns; return the ids whose files to unlink.

    An archive kept inline never had a file, so it is left out: overwriting a small
    object then needs no unlink (and no thread hand-off) after the commit.
    """
    orphans = []
    for archive_id in sorted(archive_ids):
        if not is_owned(conn, archive_id):
            cur = conn.execute("DELETE FROM inline_archives WHERE archive_id=?", (archive_id,))
            if cur.rowcount == 0:
                orphans.append(archive_id)
    return orphans


def commit_object(conn: sqlite3.Connection, commit: ObjectCommit) -> list[str]:
    """Insert the row (a no-op if already there); supersede older rows if unversioned."""
    row = commit.row
    if is_committed(conn, row.incarnation, row.key, row.version_id):
        return []
    if commit.inline is not None:
        conn.execute("INSERT OR REPLACE INTO inline_archives (archive_id, data) VALUES (?, ?)",
                     commit.inline)
    cur = conn.execute(
        "INSERT INTO objects (incarnation, key, version_id, deleted, manifest, size, etag,"
        " last_modified, owner, archives) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (row.incarnation, row.key, row.version_id, int(row.deleted), json.dumps(row.manifest),
         row.size, row.etag, row.last_modified, row.owner, json.dumps(list(row.archives))),
    )
    object_id = cur.lastrowid
    conn.executemany("INSERT OR IGNORE INTO object_archives (archive_id, object_id) VALUES (?, ?)",
                     [(a, object_id) for a in row.archives])
    conn.executemany(
        "INSERT INTO heal_queue (incarnation, key, version_id, archive_id, idx, reason, queued)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(row.incarnation, row.key, row.version_id, h.archive_id, h.index, h.reason,
          commit.queued) for h in commit.heal],
    )
    if commit.versioned:
        return []
    return _supersede(conn, row.incarnation, row.key)


def _supersede(conn: sqlite3.Connection, incarnation: str, key: str) -> list[str]:
    """Delete every row of the key but the newest; return the archives left unowned."""
    older = conn.execute(
        "SELECT id, archives FROM objects WHERE incarnation=? AND key=? AND version_id <"
        " (SELECT MAX(version_id) FROM objects WHERE incarnation=? AND key=?)",
        (incarnation, key, incarnation, key),
    ).fetchall()
    freed: set[str] = set()
    for object_id, archives in older:
        owned = json.loads(archives)
        freed.update(owned)
        conn.executemany("DELETE FROM object_archives WHERE archive_id=? AND object_id=?",
                         [(a, object_id) for a in owned])
        conn.execute("DELETE FROM objects WHERE id=?", (object_id,))
    return release(conn, freed)


def highest_version_id(conn: sqlite3.Connection) -> str:
    """The largest version id of any row: superseding only drops rows below a kept one,
    so this is the highest version this volume ever committed ("" if none)."""
    found = conn.execute("SELECT MAX(version_id) FROM objects").fetchone()
    return found[0] or ""


def latest(conn: sqlite3.Connection, incarnation: str, key: str) -> dict[str, Any] | None:
    found = conn.execute(
        "SELECT version_id, deleted, manifest FROM objects WHERE incarnation=? AND key=?"
        " ORDER BY version_id DESC LIMIT 1",
        (incarnation, key),
    ).fetchone()
    if found is None:
        return None
    return {"version_id": found["version_id"], "deleted": bool(found["deleted"]),
            "manifest": json.loads(found["manifest"])}


def inline_archive(conn: sqlite3.Connection, archive_id: str) -> bytes | None:
    found = conn.execute("SELECT data FROM inline_archives WHERE archive_id=?",
                         (archive_id,)).fetchone()
    return None if found is None else bytes(found[0])


def drop_inline(conn: sqlite3.Connection, archive_id: str) -> None:
    conn.execute("DELETE FROM inline_archives WHERE archive_id=?", (archive_id,))
