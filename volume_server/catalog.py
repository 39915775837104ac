"""Object rows and archive ownership: what a commit inserts and what it supersedes.

These functions run on the index's writer or reader threads (`fn(conn, ...)`). An archive
is removed only when no object row, no part row and no upload (a replaced part it keeps
until Complete or Abort) owns it any more; the functions return the ids whose files the
caller must unlink once the transaction has committed.

A committed row is first *pending*: older rows of the key stay, because the new version
may yet fail to reach its write quorum. Only the gateway's durable notice (or a commit
that says the version is already durable) supersedes them, and even then their archives
are *retired*, not freed: they stay readable for the grace period, so a reader streaming
the old version completes (docs/durability.md).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from shardgate.faults import kill_point
from volume_server.attributes import drop_attributes
from volume_server.claims import check_newest
from volume_server.tombstones import forget, is_forgotten


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
    # The key's "null" version (written without versioning, or while it was suspended):
    # a durable null row supersedes the older null rows, and only those.
    null_version: bool = True


@dataclass(frozen=True)
class HealEntry:
    archive_id: str | None
    index: int | None
    reason: str


@dataclass(frozen=True)
class ObjectCommit:
    row: ObjectRow
    versioned: bool = False  # not row.null_version: keeps every older row
    inline: tuple[str, bytes] | None = None
    heal: tuple[HealEntry, ...] = ()
    queued: float = 0.0
    durable: bool = False  # known committed on a write quorum (healing, tombstone repair)
    grace: float = 0.0  # seconds superseded archives stay readable
    # A conditional write: commit only if no version newer than `expect_newest` (other
    # than `ignore`) is here (volume_server/claims.py).
    expect_newest: str | None = None
    ignore: tuple[str, ...] = ()


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
    object then needs no unlink (and no thread hand-off) after the commit. A retired
    archive stays until its grace ends (sweep_retired frees it then), whoever lets go.
    """
    orphans = []
    for archive_id in sorted(archive_ids):
        if not is_owned(conn, archive_id) and not _retired(conn, archive_id):
            cur = conn.execute("DELETE FROM inline_archives WHERE archive_id=?", (archive_id,))
            if cur.rowcount == 0:
                orphans.append(archive_id)
    return orphans


def _retired(conn: sqlite3.Connection, archive_id: str) -> bool:
    return conn.execute("SELECT 1 FROM retired WHERE archive_id=?",
                        (archive_id,)).fetchone() is not None


def commit_object(conn: sqlite3.Connection, commit: ObjectCommit) -> list[str]:
    """Insert the row, pending (a no-op if already there); supersede older rows only if
    the commit says the version is durable."""
    row = commit.row
    if is_committed(conn, row.incarnation, row.key, row.version_id):
        if commit.durable:
            return mark_durable(conn, row.incarnation, row.key, row.version_id, (),
                                commit.queued, commit.grace)[1]
        return []
    if commit.expect_newest is not None:
        # Before the late-commit check below: a fenced commit (a conditional write, or a
        # small object's one-trip write) must be refused, never silently dropped.
        check_newest(conn, row.incarnation, row.key, row.version_id, commit.expect_newest,
                     commit.ignore)
    if (row.null_version and _durable_newer(conn, row)) or is_forgotten(
            conn, row.incarnation, row.key, row.version_id):
        # A late commit of a version already superseded or deleted by its id here:
        # nobody may ever read it.
        return [] if commit.inline is not None else release(conn, set(row.archives))
    if commit.inline is not None:
        conn.execute("INSERT OR REPLACE INTO inline_archives (archive_id, data) VALUES (?, ?)",
                     commit.inline)
    cur = conn.execute(
        "INSERT INTO objects (incarnation, key, version_id, deleted, manifest, size, etag,"
        " last_modified, owner, archives, durable, committed, null_version)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (row.incarnation, row.key, row.version_id, int(row.deleted), json.dumps(row.manifest),
         row.size, row.etag, row.last_modified, row.owner, json.dumps(list(row.archives)),
         int(commit.durable), commit.queued, int(row.null_version)),
    )
    object_id = cur.lastrowid
    kill_point("commit.mid_txn")
    conn.executemany("INSERT OR IGNORE INTO object_archives (archive_id, object_id) VALUES (?, ?)",
                     [(a, object_id) for a in row.archives])
    conn.executemany(
        "INSERT INTO heal_queue (incarnation, key, version_id, archive_id, idx, reason, queued)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(row.incarnation, row.key, row.version_id, h.archive_id, h.index, h.reason,
          commit.queued) for h in commit.heal],
    )
    if commit.durable and row.null_version:
        return _supersede(conn, row.incarnation, row.key, row.version_id, commit.queued,
                          commit.grace)
    return []


def repair_object(conn: sqlite3.Connection, commit: ObjectCommit) -> list[str]:
    """The healer's commit: insert the row or replace its manifest (now naming every
    holder), mark it durable and supersede older rows. A version already superseded
    here by a newer durable one is left alone."""
    row = commit.row
    if (row.null_version and _durable_newer(conn, row)) or is_forgotten(
            conn, row.incarnation, row.key, row.version_id):
        # superseded or deleted here meanwhile: a rebuilt archive just installed for it
        # is not kept
        return [] if commit.inline is not None else release(conn, set(row.archives))
    if commit.inline is not None:
        conn.execute("INSERT OR REPLACE INTO inline_archives (archive_id, data) VALUES (?, ?)",
                     commit.inline)
    found = conn.execute("SELECT id FROM objects WHERE incarnation=? AND key=? AND"
                         " version_id=?", (row.incarnation, row.key, row.version_id)).fetchone()
    if found is None:
        return commit_object(conn, ObjectCommit(row, commit.versioned, None, (),
                                                commit.queued, True, commit.grace))
    conn.execute("UPDATE objects SET manifest=?, archives=?, durable=1 WHERE id=?",
                 (json.dumps(row.manifest), json.dumps(list(row.archives)), found[0]))
    conn.executemany("INSERT OR IGNORE INTO object_archives (archive_id, object_id)"
                     " VALUES (?, ?)", [(a, found[0]) for a in row.archives])
    if not row.null_version:
        return []
    return _supersede(conn, row.incarnation, row.key, row.version_id, commit.queued,
                      commit.grace)


def _drop_row(conn: sqlite3.Connection, incarnation: str, key: str, version_id: str,
              pending_only: bool) -> list[str] | None:
    """Delete one version's row, its attributes and its archive ownership; the archive
    ids it owned (None when there was no such row)."""
    found = conn.execute("SELECT id, archives FROM objects WHERE incarnation=? AND key=? AND"
                         " version_id=?" + (" AND durable=0" if pending_only else ""),
                         (incarnation, key, version_id)).fetchone()
    if found is None:
        return None
    drop_attributes(conn, incarnation, key, [version_id])
    owned = json.loads(found["archives"])
    conn.executemany("DELETE FROM object_archives WHERE archive_id=? AND object_id=?",
                     [(a, found["id"]) for a in owned])
    conn.execute("DELETE FROM objects WHERE id=?", (found["id"],))
    return owned


def roll_back(conn: sqlite3.Connection, incarnation: str, key: str,
              version_id: str) -> list[str]:
    """Drop a pending row the healer proved never reached its write quorum (so it was
    never acknowledged and no reader served it); archive ids to unlink."""
    owned = _drop_row(conn, incarnation, key, version_id, pending_only=True)
    return [] if owned is None else release(conn, set(owned))


def hand_off(conn: sqlite3.Connection, incarnation: str, key: str, version_id: str,
             until: float) -> list[str]:
    """Drop this volume's copy of a version that now lives on the key's new placement
    (the rebalancer moved it): the row goes, its archives are retired until `until` so a
    read that started before still completes. Archive ids to unlink (none: retired)."""
    owned = _drop_row(conn, incarnation, key, version_id, pending_only=False)
    if owned is None:
        return []
    retire(conn, {a for a in owned if not is_owned(conn, a)}, until)
    conn.execute("DELETE FROM heal_queue WHERE incarnation=? AND key=? AND version_id=?",
                 (incarnation, key, version_id))
    return release(conn, set(owned))


def _durable_newer(conn: sqlite3.Connection, row: ObjectRow) -> bool:
    """A newer durable null row: it supersedes this null row as soon as it lands."""
    found = conn.execute("SELECT 1 FROM objects WHERE incarnation=? AND key=? AND"
                         " version_id > ? AND durable=1 AND null_version=1 LIMIT 1",
                         (row.incarnation, row.key, row.version_id)).fetchone()
    return found is not None


def mark_durable(conn: sqlite3.Connection, incarnation: str, key: str, version_id: str,
                 heal: tuple[HealEntry, ...], now: float, grace: float
                 ) -> tuple[bool, list[str]]:
    """The gateway's durable notice: the version is committed on a write quorum, so the
    rows it supersedes may go (their archives retired for `grace` seconds). Heal entries
    the notice carries (volumes that missed the commit) are queued in the same
    transaction. -> (False if this volume has no such row (it missed the commit),
    archive ids to unlink now: only with no grace at all)."""
    conn.executemany(
        "INSERT INTO heal_queue (incarnation, key, version_id, archive_id, idx, reason, queued)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(incarnation, key, version_id, h.archive_id, h.index, h.reason, now) for h in heal])
    found = conn.execute("UPDATE objects SET durable=1 WHERE incarnation=? AND key=? AND"
                         " version_id=? RETURNING null_version",
                         (incarnation, key, version_id)).fetchone()
    if found is None:
        return False, []
    if not found[0]:
        return True, []
    return True, _supersede(conn, incarnation, key, version_id, now, grace)


def _supersede(conn: sqlite3.Connection, incarnation: str, key: str, version_id: str,
               now: float, grace: float) -> list[str]:
    """Delete the key's null rows older than a durable null version; retire their archives
    for `grace` seconds (with no grace, free them: the ids whose files to unlink)."""
    older = conn.execute(
        "SELECT id, archives, version_id FROM objects WHERE incarnation=? AND key=? AND"
        " version_id < ? AND null_version=1", (incarnation, key, version_id),
    ).fetchall()
    drop_attributes(conn, incarnation, key, [r[2] for r in older])
    freed: set[str] = set()
    for object_id, archives, _ in older:
        owned = json.loads(archives)
        freed.update(owned)
        conn.executemany("DELETE FROM object_archives WHERE archive_id=? AND object_id=?",
                         [(a, object_id) for a in owned])
        conn.execute("DELETE FROM objects WHERE id=?", (object_id,))
    if grace <= 0:
        return release(conn, freed)
    retire(conn, freed, now + grace)
    return []


def forget_version(conn: sqlite3.Connection, incarnation: str, key: str, version_id: str,
                   durable: bool, heal: tuple[HealEntry, ...], now: float, grace: float
                   ) -> tuple[bool, list[str]]:
    """A version tombstone (volume_server/tombstones.py), with the heal entries of the
    volumes that missed it; a durable one retires the version's archives for `grace`.
    -> (whether this volume held the version, archive ids to unlink now)."""
    for h in heal:
        queue_heal(conn, incarnation, key, version_id, h.reason, now, h.archive_id, h.index)
    held, owned = forget(conn, incarnation, key, version_id, durable, now)
    if grace <= 0:
        return held, release(conn, owned)
    retire(conn, owned, now + grace)
    return held, []


def retire(conn: sqlite3.Connection, archive_ids: set[str], until: float) -> None:
    """Keep archives nobody owns any more until `until`, then `sweep_retired` frees them."""
    conn.executemany("INSERT OR REPLACE INTO retired (archive_id, until) VALUES (?, ?)",
                     [(a, until) for a in sorted(archive_ids)])


def retired_archives(conn: sqlite3.Connection) -> list[tuple[str, float]]:
    return [(r[0], r[1]) for r in conn.execute("SELECT archive_id, until FROM retired")]


def sweep_retired(conn: sqlite3.Connection, now: float) -> list[str]:
    """Free retired archives past their grace that nobody owns again; ids to unlink."""
    due = [r[0] for r in conn.execute("SELECT archive_id FROM retired WHERE until <= ?",
                                      (now,))]
    conn.executemany("DELETE FROM retired WHERE archive_id=?", [(a,) for a in due])
    return release(conn, set(due))


def unmarked_rows(conn: sqlite3.Connection, before: float) -> list[dict[str, Any]]:
    """Pending rows committed before `before` with no heal entry yet: a gateway died
    between commit and durable notice, or the version never reached its quorum."""
    rows = conn.execute(
        "SELECT incarnation, key, version_id FROM objects o WHERE durable=0 AND committed < ?"
        " AND NOT EXISTS (SELECT 1 FROM heal_queue h WHERE h.incarnation=o.incarnation AND"
        " h.key=o.key AND h.version_id=o.version_id) LIMIT 1000", (before,))
    return [dict(r) for r in rows]


def queue_heal(conn: sqlite3.Connection, incarnation: str, key: str, version_id: str,
               reason: str, now: float, archive_id: str | None = None,
               index: int | None = None) -> None:
    conn.execute(
        "INSERT INTO heal_queue (incarnation, key, version_id, archive_id, idx, reason, queued)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (incarnation, key, version_id, archive_id, index, reason, now))


def drop_inline(conn: sqlite3.Connection, archive_id: str) -> None:
    conn.execute("DELETE FROM inline_archives WHERE archive_id=?", (archive_id,))
