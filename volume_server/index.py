"""The SQLite index: one writer thread that batches commits, readers on their own connections.

SQLite allows one writer at a time, so every write goes through a single thread that
groups whatever is queued into one transaction (one fsync for many commits, each op in
its own savepoint so one failure does not undo the others). Reads run on a small thread
pool, each thread with its own connection, so the event loop never blocks on SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

SCHEMA_VERSION = 4
MAX_BATCH = 256
READ_THREADS = 4

# Schema 4 added version_attributes (in-place attributes such as tags, each with the
# stamp of its newest change), bucket_settings (versioning, tags: newest stamp wins),
# objects.null_version (the row is its key's "null" version: only null rows supersede,
# and only older null rows), version_tombstones (a version deleted by its id) and
# key_claims (conditional writes claim their key on a majority of the placement).
# Schema 3 added objects.durable / objects.committed (a row stays pending until the
# gateway's durable notice), retired (archives kept readable for a grace period),
# volume_state (this volume rebuilding or not) and peers (the data id of each volume
# as the cluster last knew it: a volume whose data id changed lost its data).
# Schema 2 added upload_archives (archives of replaced parts, owned by their upload until
# it is completed or aborted) and upload_claims (which complete or abort holds an upload).
SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    id INTEGER PRIMARY KEY,
    incarnation TEXT NOT NULL,
    key TEXT NOT NULL,
    version_id TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    manifest TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    last_modified REAL NOT NULL,
    owner TEXT NOT NULL,
    archives TEXT NOT NULL,
    durable INTEGER NOT NULL DEFAULT 0,
    committed REAL NOT NULL DEFAULT 0,
    null_version INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS version_tombstones (
    incarnation TEXT NOT NULL,
    key TEXT NOT NULL,
    version_id TEXT NOT NULL,
    durable INTEGER NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (incarnation, key, version_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS version_tombstones_pending ON version_tombstones (durable, created);
CREATE TABLE IF NOT EXISTS key_claims (
    incarnation TEXT NOT NULL,
    key TEXT NOT NULL,
    token TEXT NOT NULL,
    until REAL NOT NULL,
    PRIMARY KEY (incarnation, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS objects_pending ON objects (durable, committed);
CREATE TABLE IF NOT EXISTS volume_state (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS peers (
    volume_id TEXT PRIMARY KEY,
    data_id TEXT NOT NULL,
    stamp REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS retired (
    archive_id TEXT PRIMARY KEY,
    until REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS objects_newest
    ON objects (incarnation, key, version_id DESC);
CREATE TABLE IF NOT EXISTS object_archives (
    archive_id TEXT NOT NULL,
    object_id INTEGER NOT NULL,
    PRIMARY KEY (archive_id, object_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS inline_archives (
    archive_id TEXT PRIMARY KEY,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    incarnation TEXT NOT NULL,
    created REAL NOT NULL,
    deleted INTEGER NOT NULL,
    stamp INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY,
    incarnation TEXT NOT NULL,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    initiated REAL NOT NULL,
    owner TEXT NOT NULL,
    manifest TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_by_key ON uploads (incarnation, key, initiated);
CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL,
    part_number INTEGER NOT NULL,
    archive_id TEXT NOT NULL,
    manifest TEXT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);
CREATE INDEX IF NOT EXISTS parts_by_archive ON parts (archive_id);
CREATE TABLE IF NOT EXISTS upload_archives (
    upload_id TEXT NOT NULL,
    archive_id TEXT NOT NULL,
    PRIMARY KEY (upload_id, archive_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS upload_archives_by_archive ON upload_archives (archive_id);
CREATE TABLE IF NOT EXISTS upload_claims (
    upload_id TEXT PRIMARY KEY,
    token TEXT NOT NULL,
    op TEXT NOT NULL,
    claimed REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS version_attributes (
    incarnation TEXT NOT NULL,
    key TEXT NOT NULL,
    version_id TEXT NOT NULL,
    name TEXT NOT NULL,
    stamp TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (incarnation, key, version_id, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bucket_settings (
    name TEXT NOT NULL,
    incarnation TEXT NOT NULL,
    setting TEXT NOT NULL,
    stamp INTEGER NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (name, incarnation, setting)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS heal_queue (
    id INTEGER PRIMARY KEY,
    incarnation TEXT NOT NULL,
    key TEXT NOT NULL,
    version_id TEXT NOT NULL,
    archive_id TEXT,
    idx INTEGER,
    reason TEXT NOT NULL,
    queued REAL NOT NULL
);
"""


class IndexClosed(RuntimeError):
    """The index was closed while a request still wanted it."""


def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA synchronous=FULL")
    if readonly:
        conn.execute("PRAGMA query_only=ON")
    return conn


_Op = tuple[Callable[..., Any], tuple[Any, ...], asyncio.AbstractEventLoop, asyncio.Future]
_Outcome = tuple[asyncio.Future, bool, Any]  # a write's future, ok, its value or error


class Index:
    """Owns the SQLite file: `await write(fn, ...)` and `await read(fn, ...)`.

    `fn(conn, *args)` runs synchronously on the writer thread (inside a transaction) or
    on a reader thread; its return value becomes the awaited result.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._queue: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = True

    def open(self) -> None:
        """Create the schema and start the writer thread (blocking)."""
        conn = _connect(self._path, readonly=False)
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            conn.close()
            raise RuntimeError(f"{self._path}: SQLite refused WAL mode ({mode})")
        stored = conn.execute("PRAGMA user_version").fetchone()[0]
        if stored > SCHEMA_VERSION:
            conn.close()
            raise RuntimeError(f"{self._path}: schema {stored} is newer than {SCHEMA_VERSION}")
        columns = {row[1] for row in conn.execute("PRAGMA table_info(objects)")}
        if columns and "durable" not in columns:
            # Rows of schema 2 superseded their predecessors at commit: all are durable.
            conn.execute("ALTER TABLE objects ADD COLUMN durable INTEGER NOT NULL DEFAULT 1")
            conn.execute("ALTER TABLE objects ADD COLUMN committed REAL NOT NULL DEFAULT 0")
        if columns and "null_version" not in columns:
            # Rows before schema 4 were all written without versioning: null versions.
            conn.execute("ALTER TABLE objects ADD COLUMN null_version INTEGER NOT NULL"
                         " DEFAULT 1")
        conn.executescript(SCHEMA)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._closed = False
        self._readers = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="index-read")
        self._writer = threading.Thread(target=self._write_loop, args=(conn,),
                                        name="index-writer", daemon=True)
        self._writer.start()

    def close(self) -> None:
        """Finish queued writes, then close every connection (blocking)."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        if self._writer is not None:
            self._writer.join()
        if self._readers is not None:
            self._readers.shutdown(wait=True)
        with self._lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise IndexClosed("index is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        self._queue.put((fn, args, loop, future))
        return await future

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed or self._readers is None:
            raise IndexClosed("index is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._run_read, fn, args)

    def _run_read(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self._path, readonly=True)
            self._local.conn = conn
            with self._lock:
                self._reader_conns.append(conn)
        return fn(conn, *args)

    def _write_loop(self, conn: sqlite3.Connection) -> None:
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                batch = [first]
                stop = False
                while len(batch) < MAX_BATCH:
                    try:
                        op = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if op is None:
                        stop = True
                        break
                    batch.append(op)
                self._run_batch(conn, batch)
                if stop:
                    return
        finally:
            conn.close()
            self._fail_leftovers()

    def _fail_leftovers(self) -> None:
        """Writes queued behind the close sentinel are answered, never left hanging."""
        while True:
            try:
                op = self._queue.get_nowait()
            except queue.Empty:
                return
            if op is not None:
                _notify(op[2], op[3], False, IndexClosed("index is closed"))

    @staticmethod
    def _run_batch(conn: sqlite3.Connection, batch: list[_Op]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, args, _, _ in batch:
                conn.execute("SAVEPOINT op")
                try:
                    outcomes.append((True, fn(conn, *args)))
                    conn.execute("RELEASE op")
                except Exception as exc:  # handed to the awaiting request
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    outcomes.append((False, exc))
            conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            outcomes = [(False, exc)] * len(batch)
        # One wake-up of each waiting loop for the whole batch, not one per write.
        by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        for (_, _, loop, future), (ok, value) in zip(batch, outcomes, strict=True):
            by_loop.setdefault(loop, []).append((future, ok, value))
        for loop, settled in by_loop.items():
            _wake(loop, settled)


def _notify(loop: asyncio.AbstractEventLoop, future: asyncio.Future, ok: bool,
            value: Any) -> None:
    _wake(loop, [(future, ok, value)])


def _wake(loop: asyncio.AbstractEventLoop, settled: list[_Outcome]) -> None:
    with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
        loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: list[_Outcome]) -> None:
    for future, ok, value in settled:
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
