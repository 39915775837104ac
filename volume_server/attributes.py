"""In-place attributes of a stored version (its tags now): stamped, newest stamp wins.

A version's bytes and manifest never change once committed, but some of what S3 keeps
with it does (tags; later ACLs, retention, legal hold). Each such change is written on the
write quorum with its own stamp, a time-ordered id newer than any the writing gateway has
seen; a volume keeps, per attribute, only the value with the newest stamp, so changes
that arrive late or twice (healing) cannot undo a newer one. Functions run on the index's
threads (`fn(conn, ...)`).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any


def set_attribute(conn: sqlite3.Connection, incarnation: str, key: str, version_id: str,
                  name: str, stamp: str, value: Any) -> bool:
    """Keep `value` unless a newer stamp is held; False if this volume lacks the version
    (it missed the commit: the healer brings both)."""
    found = conn.execute("SELECT 1 FROM objects WHERE incarnation=? AND key=? AND"
                         " version_id=?", (incarnation, key, version_id)).fetchone()
    if found is None:
        return False
    conn.execute(
        "INSERT INTO version_attributes (incarnation, key, version_id, name, stamp, value)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (incarnation, key, version_id, name)"
        " DO UPDATE SET stamp=excluded.stamp, value=excluded.value"
        " WHERE excluded.stamp > version_attributes.stamp",
        (incarnation, key, version_id, name, stamp, json.dumps(value)))
    return True


def attributes_of(conn: sqlite3.Connection, incarnation: str, key: str,
                  version_id: str) -> dict[str, dict[str, Any]]:
    """{name: {"stamp": ..., "value": ...}} of one version."""
    rows = conn.execute("SELECT name, stamp, value FROM version_attributes WHERE"
                        " incarnation=? AND key=? AND version_id=?",
                        (incarnation, key, version_id))
    return {r[0]: {"stamp": r[1], "value": json.loads(r[2])} for r in rows}


def drop_attributes(conn: sqlite3.Connection, incarnation: str, key: str,
                    version_ids: list[str]) -> None:
    """Forget the attributes of versions whose rows are gone."""
    conn.executemany("DELETE FROM version_attributes WHERE incarnation=? AND key=? AND"
                     " version_id=?", [(incarnation, key, v) for v in version_ids])
