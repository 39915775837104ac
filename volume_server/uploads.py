"""Multipart uploads on one volume: upload rows, part rows, and how an upload ends.

An upload owns the archives of its part rows and of every part row it replaced: a
Complete may have chosen a part just before a re-upload of it landed here, so nothing an
upload ever held is freed while the upload lasts. An upload ends once, by Complete or by
Abort, and only for the holder of its claim: a gateway claims the upload on a write
quorum of volumes before it acts, so a Complete and an Abort that race cannot both act.
A claim older than CLAIM_SECONDS may be taken over (its gateway may have died).

Like catalog.py these run on the index's threads; functions that can leave an archive
without an owner return the ids whose files the caller unlinks after the commit.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from typing import Any

from volume_server.catalog import HealEntry, ObjectCommit, commit_object, is_committed, release

CLAIM_SECONDS = 30.0
CLAIM_OPS = ("complete", "abort", "move")  # move: the rebalancer moving an open upload
MISSING_REASON = "part archive not on this volume at complete"


class UploadMissing(Exception):
    """No such upload on this volume (never created here, completed or aborted)."""


class UploadConflict(Exception):
    """Another Complete or Abort holds the upload, or the request names another key."""


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


def _exists(conn: sqlite3.Connection, upload_id: str) -> bool:
    return conn.execute("SELECT 1 FROM uploads WHERE upload_id=?",
                        (upload_id,)).fetchone() is not None


def commit_part(conn: sqlite3.Connection, upload_id: str, part_number: int, archive_id: str,
                manifest: dict[str, Any]) -> tuple[bool, list[str]]:
    """Upsert the part row -> (committed, archives to unlink).

    Refused (False) once the upload has ended, so a part racing Abort or Complete leaves
    nothing behind; its freshly installed archive is released at once. A replaced part's
    archive stays owned by the upload (a racing Complete may name it).
    """
    if not _exists(conn, upload_id):
        return False, release(conn, {archive_id})
    old = part_archive(conn, upload_id, part_number)
    conn.execute(
        "INSERT OR REPLACE INTO parts (upload_id, part_number, archive_id, manifest)"
        " VALUES (?, ?, ?, ?)", (upload_id, part_number, archive_id, json.dumps(manifest)))
    if old is not None and old != archive_id:
        conn.execute("INSERT OR IGNORE INTO upload_archives (upload_id, archive_id)"
                     " VALUES (?, ?)", (upload_id, old))
    conn.execute("DELETE FROM upload_archives WHERE upload_id=? AND archive_id=?",
                 (upload_id, archive_id))
    return True, []


def _check_claim(conn: sqlite3.Connection, upload_id: str, token: str | None,
                 now: float) -> None:
    """Raise UploadConflict if a live claim of another token holds the upload."""
    held = conn.execute("SELECT token, op, claimed FROM upload_claims WHERE upload_id=?",
                        (upload_id,)).fetchone()
    if held is None or held["token"] == token or now - held["claimed"] >= CLAIM_SECONDS:
        return
    raise UploadConflict(f"upload {upload_id} is held by a running {held['op']}")


def claim_upload(conn: sqlite3.Connection, upload_id: str, token: str, op: str,
                 now: float) -> None:
    """Hold the upload for `token` (again, if it already holds it)."""
    if not _exists(conn, upload_id):
        raise UploadMissing(f"no upload {upload_id}")
    _check_claim(conn, upload_id, token, now)
    conn.execute("INSERT OR REPLACE INTO upload_claims (upload_id, token, op, claimed)"
                 " VALUES (?, ?, ?, ?)", (upload_id, token, op, now))


def release_claim(conn: sqlite3.Connection, upload_id: str, token: str) -> None:
    conn.execute("DELETE FROM upload_claims WHERE upload_id=? AND token=?", (upload_id, token))


def _owned(conn: sqlite3.Connection, upload_id: str) -> set[str]:
    """Every archive the upload holds: current part rows and replaced ones."""
    current = conn.execute("SELECT archive_id FROM parts WHERE upload_id=?", (upload_id,))
    replaced = conn.execute("SELECT archive_id FROM upload_archives WHERE upload_id=?",
                            (upload_id,))
    return {r[0] for r in current} | {r[0] for r in replaced}


def _drop(conn: sqlite3.Connection, upload_id: str) -> set[str]:
    """Delete the upload and everything it holds; return the archives it owned."""
    owned = _owned(conn, upload_id)
    for table in ("parts", "upload_archives", "upload_claims", "uploads"):
        conn.execute(f"DELETE FROM {table} WHERE upload_id=?", (upload_id,))
    return owned


def abort_upload(conn: sqlite3.Connection, upload_id: str, token: str | None,
                 now: float) -> list[str]:
    """End the upload by Abort: every archive it owned and no object row owns is freed."""
    if not _exists(conn, upload_id):
        raise UploadMissing(f"no upload {upload_id}")
    _check_claim(conn, upload_id, token, now)
    return release(conn, _drop(conn, upload_id))


def complete_upload(conn: sqlite3.Connection, upload_id: str, token: str,
                    commit: ObjectCommit) -> tuple[list[str], list[str]]:
    """End the upload by Complete, as one compare-and-set -> (archives to unlink, missing).

    The caller must hold the upload's claim. The object row is committed as by
    /objects/commit and owns the archives it lists; archives the upload held that the
    row does not list (parts left out, replaced versions) are freed. A listed archive the
    upload does not hold here (this volume missed that part) is queued for healing and
    returned as missing. A retry after success (upload gone, row present) is a no-op.
    """
    row = commit.row
    found = conn.execute("SELECT incarnation, key FROM uploads WHERE upload_id=?",
                         (upload_id,)).fetchone()
    if found is None:
        if is_committed(conn, row.incarnation, row.key, row.version_id):
            return [], []
        raise UploadMissing(f"no upload {upload_id}")
    if (found["incarnation"], found["key"]) != (row.incarnation, row.key):
        raise UploadConflict(f"upload {upload_id} is for another key")
    held = conn.execute("SELECT token FROM upload_claims WHERE upload_id=?",
                        (upload_id,)).fetchone()
    if held is None or held["token"] != token:
        raise UploadConflict(f"upload {upload_id} is not claimed by this complete")
    owned = _owned(conn, upload_id)
    missing = [a for a in row.archives if a not in owned]
    heal = commit.heal + tuple(HealEntry(a, None, MISSING_REASON) for a in missing)
    orphans = commit_object(conn, replace(commit, heal=heal))
    leftovers = _drop(conn, upload_id) - set(row.archives)
    return orphans + release(conn, leftovers), missing
