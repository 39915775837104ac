"""One volume's page of ListObjects: each key's rows down to its newest durable one, in
key order, with rollups (the gateway applies the read rule to them, as for GET).

Prefixes become key ranges (`prefix <= key < successor(prefix)`), so the scan uses the
(incarnation, key, version_id DESC) index and a rolled-up common prefix is jumped over
with a fresh range query instead of being walked key by key.
"""

from __future__ import annotations

import sqlite3
from typing import Any

MAX_LIMIT = 1000

_LAST_CODE_POINT = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


def successor(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with `prefix`.

    None when there is none (empty prefix, or only U+10FFFF characters). SQLite compares
    TEXT as UTF-8 bytes, which orders like code points, as Python does.
    """
    chars = list(prefix)
    while chars:
        code = ord(chars[-1]) + 1
        if code <= _LAST_CODE_POINT:
            if code in _SURROGATES:
                code = _SURROGATES.stop
            chars[-1] = chr(code)
            return "".join(chars)
        chars.pop()
    return None


def _rows(conn: sqlite3.Connection, incarnation: str, low: str, inclusive: bool,
          high: str | None, columns: str) -> sqlite3.Cursor:
    op = ">=" if inclusive else ">"
    sql = f"SELECT {columns} FROM objects WHERE incarnation=? AND key {op} ?"
    args: list[Any] = [incarnation, low]
    if high is not None:
        sql += " AND key < ?"
        args.append(high)
    return conn.execute(sql + " ORDER BY key, version_id DESC", args)


def live_under(conn: sqlite3.Connection, incarnation: str, prefix: str) -> str | None:
    """Whether a key under `prefix` is live here: "settled" when some key's newest row is
    durable and not a tombstone; "maybe" when only pending rows say so (a write never
    acknowledged, or a delete whose notice is still out); None when none is."""
    maybe = False
    done = None  # a key whose rows were read down to its newest durable one
    last = None
    for key, deleted, durable in _rows(conn, incarnation, prefix, True, successor(prefix),
                                       "key, deleted, durable"):
        if key == done:
            continue
        newest = key != last
        last = key
        if newest and durable and not deleted:
            return "settled"
        maybe = maybe or not deleted
        if durable:
            done = key
    return "maybe" if maybe else None


def _version(row: sqlite3.Row) -> dict[str, Any]:
    return {"version_id": row["version_id"], "deleted": bool(row["deleted"]),
            "durable": bool(row["durable"]), "size": row["size"], "etag": row["etag"],
            "last_modified": row["last_modified"], "owner": row["owner"]}


def _rollup(key: str, prefix: str, delimiter: str) -> str | None:
    if not delimiter or not key.startswith(prefix):
        return None
    at = key.find(delimiter, len(prefix))
    return None if at < 0 else key[: at + len(delimiter)]


def list_page(conn: sqlite3.Connection, incarnation: str, prefix: str = "",
              start_after: str = "", delimiter: str = "", limit: int = MAX_LIMIT
              ) -> dict[str, Any]:
    """The page format of docs/volume-api.md (`GET /objects/list`)."""
    limit = min(limit, MAX_LIMIT)
    if limit <= 0:
        return {"entries": [], "truncated": False, "next": ""}
    high = successor(prefix) if prefix else None
    low, inclusive = prefix, True
    if start_after >= prefix:
        low, inclusive = start_after, False
        rolled = _rollup(start_after, prefix, delimiter)
        if rolled is not None:  # resuming after (or inside) a common prefix: skip all of it
            after = successor(rolled)
            if after is None:
                return {"entries": [], "truncated": False, "next": ""}
            low, inclusive = after, True
    entries: list[dict[str, Any]] = []
    columns = "key, version_id, deleted, durable, size, etag, last_modified, owner"
    while len(entries) <= limit:
        restart = False
        last = None
        settled = False
        for row in _rows(conn, incarnation, low, inclusive, high, columns):
            key = row["key"]
            if key == last:
                if not settled:  # a pending row above: list down to the newest durable
                    entries[-1]["versions"].append(_version(row))
                    settled = bool(row["durable"])
                continue
            last = key
            settled = bool(row["durable"])
            rolled = _rollup(key, prefix, delimiter)
            if rolled is not None:
                live = live_under(conn, incarnation, rolled)
                if live is not None:
                    entries.append({"prefix": rolled, "settled": live == "settled"})
                after = successor(rolled)
                if after is not None and len(entries) <= limit:
                    low, inclusive, restart = after, True, True
                break
            entries.append({"key": key, "versions": [_version(row)]})
            if len(entries) > limit:
                # this key's remaining rows are left out; it is past the page anyway
                break
        if not restart:
            break
    truncated = len(entries) > limit
    entries = entries[:limit]
    nxt = ""
    if entries:
        nxt = entries[-1].get("key", entries[-1].get("prefix", ""))
    return {"entries": entries, "truncated": truncated, "next": nxt}
