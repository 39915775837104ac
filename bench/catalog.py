"""What the zero-work servers remember (objects' parts, open uploads), in one process or
shared by its worker processes.

A ceiling run with as many worker processes as the gateway answers each request in
whichever worker took the connection, so an object PUT through one must be found by a
GET through another: `SharedCatalog` keeps the names and sizes (never the bytes) in one
SQLite file, without fsync. `MemoryCatalog` is the one-process case, dicts only.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass

SHARED_ENV = "BENCH_SHARED_CATALOG"  # a file path: the workers' shared catalog


@dataclass
class StoredObject:
    parts: list[tuple[str, int]]  # (storage name, size) of each part, in order
    checksum: str | None  # the CRC algorithm asked for by a single PUT

    @property
    def size(self) -> int:
        return sum(size for _, size in self.parts)


class MemoryCatalog:
    def __init__(self) -> None:
        self._objects: dict[str, StoredObject] = {}
        self._uploads: dict[str, dict[int, tuple[str, int]]] = {}
        self._sorted: list[str] | None = None  # reset by any change

    def put(self, key: str, obj: StoredObject) -> None:
        self._objects[key] = obj
        self._sorted = None

    def get(self, key: str) -> StoredObject | None:
        return self._objects.get(key)

    def delete(self, key: str) -> None:
        if self._objects.pop(key, None) is not None:
            self._sorted = None

    def sorted_keys(self) -> list[str]:
        if self._sorted is None:
            self._sorted = sorted(self._objects)
        return self._sorted

    def size(self, key: str) -> int:
        """The size of a key `sorted_keys` just returned (for a listing)."""
        return self._objects[key].size

    def add_part(self, upload_id: str, number: int, name: str, size: int) -> None:
        self._uploads.setdefault(upload_id, {})[number] = (name, size)

    def take_parts(self, upload_id: str) -> list[tuple[str, int]]:
        """The upload's parts in order, and the upload forgotten."""
        parts = self._uploads.pop(upload_id, {})
        return [parts[n] for n in sorted(parts)]


class SharedCatalog(MemoryCatalog):
    """The same, in a SQLite file every worker opens (each its own connection)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE IF NOT EXISTS objects (key TEXT PRIMARY KEY,"
                         " parts TEXT, checksum TEXT)")
        self._db.execute("CREATE TABLE IF NOT EXISTS parts (upload_id TEXT, number INTEGER,"
                         " name TEXT, size INTEGER, PRIMARY KEY (upload_id, number))")
        self._seen = -1  # the file's data_version when the sorted keys were read
        self._sizes: dict[str, int] = {}

    def put(self, key: str, obj: StoredObject) -> None:
        self._db.execute("INSERT OR REPLACE INTO objects VALUES (?, ?, ?)",
                         (key, json.dumps(obj.parts), obj.checksum))
        self._seen = -1

    def get(self, key: str) -> StoredObject | None:
        row = self._db.execute("SELECT parts, checksum FROM objects WHERE key=?",
                               (key,)).fetchone()
        return None if row is None else StoredObject(
            [(name, size) for name, size in json.loads(row[0])], row[1])

    def delete(self, key: str) -> None:
        self._db.execute("DELETE FROM objects WHERE key=?", (key,))
        self._seen = -1

    def sorted_keys(self) -> list[str]:
        # data_version moves when another connection commits: re-read only then.
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        if self._sorted is None or version != self._seen:
            rows = self._db.execute("SELECT key, parts FROM objects ORDER BY key").fetchall()
            self._sorted = [key for key, _ in rows]
            self._sizes = {key: sum(size for _, size in json.loads(parts))
                           for key, parts in rows}
            self._seen = version
        return self._sorted

    def size(self, key: str) -> int:
        return self._sizes[key]

    def add_part(self, upload_id: str, number: int, name: str, size: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO parts VALUES (?, ?, ?, ?)",
                         (upload_id, number, name, size))

    def take_parts(self, upload_id: str) -> list[tuple[str, int]]:
        rows = self._db.execute("SELECT name, size FROM parts WHERE upload_id=?"
                                " ORDER BY number", (upload_id,)).fetchall()
        self._db.execute("DELETE FROM parts WHERE upload_id=?", (upload_id,))
        return [(name, size) for name, size in rows]


def catalog() -> MemoryCatalog:
    """The shared catalog when the server runs several workers (SHARED_ENV names its
    file), else one in memory."""
    path = os.environ.get(SHARED_ENV)
    return SharedCatalog(path) if path else MemoryCatalog()
