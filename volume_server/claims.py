"""Key claims and the newest-version fence: what makes a conditional write atomic.

A conditional write (If-None-Match, If-Match) claims its key on a majority of the
placement, evaluates its condition by the read rule while it holds the claim, and
commits with the id of the version it evaluated. A volume commits such a version only
if it holds no newer version than that one (other than versions the gateway proved were
never acknowledged): a claim that expired while its holder stalled, or a plain write
that slipped in, makes the commit fail rather than overwrite what the condition did not
see. Functions run on the index's threads (`fn(conn, ...)`).
"""

from __future__ import annotations

import sqlite3


class NewerVersion(Exception):
    """The key has a version newer than the one the conditional write evaluated."""


def claim(conn: sqlite3.Connection, incarnation: str, key: str, token: str, now: float,
          ttl: float) -> bool:
    """Take (or renew) the key's claim for `token` unless another live claim holds it."""
    found = conn.execute("SELECT token, until FROM key_claims WHERE incarnation=? AND key=?",
                         (incarnation, key)).fetchone()
    if found is not None and found[0] != token and found[1] > now:
        return False
    conn.execute("INSERT OR REPLACE INTO key_claims (incarnation, key, token, until)"
                 " VALUES (?, ?, ?, ?)", (incarnation, key, token, now + ttl))
    return True


def release(conn: sqlite3.Connection, incarnation: str, key: str, token: str) -> None:
    conn.execute("DELETE FROM key_claims WHERE incarnation=? AND key=? AND token=?",
                 (incarnation, key, token))


def sweep_claims(conn: sqlite3.Connection, now: float) -> int:
    """Drop expired claims (their holders died or gave up)."""
    return conn.execute("DELETE FROM key_claims WHERE until <= ?", (now,)).rowcount


def check_newest(conn: sqlite3.Connection, incarnation: str, key: str, version_id: str,
                 expected: str, ignore: tuple[str, ...]) -> None:
    """NewerVersion unless every version of the key here newer than `expected` is this
    one or one of `ignore` (never acknowledged), tombstoned ones aside."""
    rows = conn.execute(
        "SELECT version_id FROM objects o WHERE incarnation=? AND key=? AND version_id > ?"
        " AND version_id != ? AND NOT EXISTS (SELECT 1 FROM version_tombstones t WHERE"
        " t.incarnation=o.incarnation AND t.key=o.key AND t.version_id=o.version_id)",
        (incarnation, key, expected, version_id))
    newer = [r[0] for r in rows if r[0] not in ignore]
    if newer:
        raise NewerVersion(f"{incarnation}/{key}: {newer[0]} is newer than {expected!r}")
