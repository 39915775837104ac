"""The map store in one SQLite file: etcd's interface for a cluster on a single host.

Every process of a `shardgate dev` cluster opens the same file. SQLite's write lock makes
each compare-and-set atomic across processes; an event log gives watches their history
(polled: no process serves it), and expired leases are swept by whichever process looks
first. It is meant for one host: a multi-host cluster uses etcd.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from shardgate.mapstore import Compacted, Entry, Event, MapStore, MapUnavailable, Snapshot

# Events kept for watches to resume from; a watcher further behind reads everything again.
KEEP_EVENTS = 10_000
POLL_SECONDS = 0.2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL,
                               mod_revision INTEGER NOT NULL, lease INTEGER);
CREATE TABLE IF NOT EXISTS events (revision INTEGER PRIMARY KEY, key TEXT NOT NULL,
                                   value BLOB);
CREATE TABLE IF NOT EXISTS leases (id INTEGER PRIMARY KEY, ttl REAL NOT NULL,
                                   expires REAL NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('revision', 1), ('compacted', 0);
"""


class EmbeddedStore(MapStore):
    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self._path, timeout=10, isolation_level=None,
                                   check_same_thread=False)
        self._lock = threading.Lock()
        # A thread of its own: a lease's refresh never queues behind the process's other
        # work in the default executor (a rebalancer's or healer's erasure coding).
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="map-store")
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)

    async def _run(self, fn, *args):
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._thread, self._locked, fn, *args)
        except sqlite3.Error as exc:
            raise MapUnavailable(f"{self._path}: {exc}") from exc

    def _locked(self, fn, *args):
        with self._lock:
            return fn(*args)

    def _write(self, fn, *args):
        """Run `fn` inside one write transaction, after sweeping expired leases."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            self._sweep(time.time())
            result = fn(*args)
            db.execute("COMMIT")
            return result
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _next_revision(self) -> int:
        (rev,) = self._db.execute("SELECT value FROM meta WHERE name='revision'").fetchone()
        self._db.execute("UPDATE meta SET value=? WHERE name='revision'", (rev + 1,))
        return rev + 1

    def _record(self, key: str, value: bytes | None) -> int:
        rev = self._next_revision()
        self._db.execute("INSERT INTO events VALUES (?, ?, ?)", (rev, key, value))
        if rev % 1000 == 0:
            cut = rev - KEEP_EVENTS
            self._db.execute("DELETE FROM events WHERE revision <= ?", (cut,))
            self._db.execute("UPDATE meta SET value=max(value, ?) WHERE name='compacted'",
                             (cut,))
        return rev

    def _sweep(self, now: float) -> None:
        expired = [row[0] for row in
                   self._db.execute("SELECT id FROM leases WHERE expires < ?", (now,))]
        for lease in expired:
            keys = [row[0] for row in
                    self._db.execute("SELECT key FROM kv WHERE lease=?", (lease,))]
            for key in keys:
                self._db.execute("DELETE FROM kv WHERE key=?", (key,))
                self._record(key, None)
            self._db.execute("DELETE FROM leases WHERE id=?", (lease,))

    def _expired_leases(self) -> bool:
        return self._db.execute("SELECT 1 FROM leases WHERE expires < ? LIMIT 1",
                                (time.time(),)).fetchone() is not None

    async def read(self, prefix: str) -> Snapshot:
        def read() -> Snapshot:
            if self._expired_leases():
                self._write(lambda: None)
            self._db.execute("BEGIN")
            try:
                (rev,) = self._db.execute(
                    "SELECT value FROM meta WHERE name='revision'").fetchone()
                rows = self._db.execute(
                    "SELECT key, value, mod_revision FROM kv WHERE substr(key, 1, ?) = ?",
                    (len(prefix), prefix)).fetchall()
            finally:
                self._db.execute("COMMIT")
            return Snapshot(rev, {k: Entry(bytes(v), r) for k, v, r in rows})
        return await self._run(read)

    async def put(self, key: str, value: bytes, *, if_revision: int | None = None,
                  lease: int | None = None) -> bool:
        def put() -> bool:
            row = self._db.execute("SELECT mod_revision FROM kv WHERE key=?",
                                   (key,)).fetchone()
            if if_revision is not None and (row[0] if row else 0) != if_revision:
                return False
            if lease is not None and self._db.execute(
                    "SELECT 1 FROM leases WHERE id=?", (lease,)).fetchone() is None:
                raise MapUnavailable(f"lease {lease} expired")
            rev = self._record(key, value)
            self._db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?, ?, ?)",
                             (key, value, rev, lease))
            return True
        return await self._run(self._write, put)

    async def delete(self, key: str) -> None:
        def delete() -> None:
            if self._db.execute("DELETE FROM kv WHERE key=?", (key,)).rowcount:
                self._record(key, None)
        await self._run(self._write, delete)

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        def poll(after: int) -> list[Event]:
            if self._expired_leases():
                self._write(lambda: None)
            (compacted,) = self._db.execute(
                "SELECT value FROM meta WHERE name='compacted'").fetchone()
            if after < compacted:
                raise Compacted(f"revision {after + 1} was compacted (kept from "
                                f"{compacted + 1})")
            rows = self._db.execute(
                "SELECT revision, key, value FROM events WHERE revision > ? "
                "AND substr(key, 1, ?) = ? ORDER BY revision", (after, len(prefix), prefix))
            return [Event(k, bytes(v) if v is not None else None, r) for r, k, v in rows]

        after = start_revision - 1
        while True:
            events = await self._run(poll, after)
            if events:
                after = events[-1].revision
                yield events
            else:
                await asyncio.sleep(POLL_SECONDS)

    async def grant_lease(self, ttl_seconds: int) -> int:
        def grant() -> int:
            cur = self._db.execute("INSERT INTO leases (ttl, expires) VALUES (?, ?)",
                                   (ttl_seconds, time.time() + ttl_seconds))
            return int(cur.lastrowid)
        return await self._run(self._write, grant)

    async def refresh_lease(self, lease: int) -> bool:
        def refresh() -> bool:
            return self._db.execute("UPDATE leases SET expires = ? + ttl WHERE id=?",
                                    (time.time(), lease)).rowcount == 1
        return await self._run(self._write, refresh)

    async def close(self) -> None:
        with self._lock:
            self._db.close()
        self._thread.shutdown(wait=False)
