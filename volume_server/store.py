"""One volume's storage: the data directory and its SQLite index behind async methods.

The order of every change follows the write path (docs/durability.md): files are
moved (and their directories fsynced) before the SQLite transaction that makes them
visible, and files nobody owns any more are unlinked only after the transaction that
disowned them has committed.

The store also keeps a clock: the highest version id it has committed, which every
stage, commit and latest answer carries, so a gateway whose own clock lags learns of
newer versions before it mints the next one.

Archives the gateway keeps inline are staged in memory (`staging.MemoryStages`) and reach
disk only in the commit transaction, whose fsync (synchronous=FULL) is the one that makes
the write durable; that commit runs as a single writer-thread job.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from shardgate.faults import kill_point
from volume_server import catalog, claims, listing, records, row_reads, staging, tombstones, uploads
from volume_server.catalog import ObjectCommit
from volume_server.fileio import LockedFd, owning_opened
from volume_server.index import Index
from volume_server.layout import FORMAT_VERSION, Layout

MAX_INLINE_BYTES = 8 << 20


class Store:
    def __init__(self, data_dir: str | Path, volume_id: str,
                 layout: Layout | None = None) -> None:
        self.volume_id = volume_id
        self.format = FORMAT_VERSION
        self.layout = layout or Layout(data_dir, volume_id)
        self.index = Index(self.layout.index_path)
        self.memory = staging.MemoryStages()
        self.clock = ""
        self.rebuilding = False

    async def open(self) -> None:
        await asyncio.to_thread(self._open)
        self.clock = await self.index.read(row_reads.highest_version_id)
        if self.layout.created:
            # A new data directory holds nothing: until it is rebuilt its answers must
            # not count ("no such version" from it could resurrect a deleted object).
            await self.index.write(records.set_state, "rebuilding", "1")
        self.rebuilding = await self.index.read(records.get_state, "rebuilding") == "1"

    @property
    def data_id(self) -> str:
        return self.layout.data_id

    async def set_rebuilding(self, rebuilding: bool) -> None:
        await self.index.write(records.set_state, "rebuilding", "1" if rebuilding else "0")
        self.rebuilding = rebuilding

    async def peers(self) -> dict[str, str]:
        return await self.index.read(records.get_peers)

    async def put_peers(self, peers: dict[str, str]) -> None:
        await self.index.write(records.put_peers, peers, time.time())

    def _open(self) -> None:
        self.layout.prepare()
        try:
            self.index.open()
        except BaseException:
            self.layout.unlock()
            raise

    async def close(self) -> None:
        try:
            await asyncio.to_thread(self.index.close)
        finally:
            self.layout.unlock()

    def _observe(self, version_id: str) -> None:
        """Advance the clock past a version id this volume has committed."""
        if version_id > self.clock:
            self.clock = version_id

    # staging and commits

    async def stage(self, stage_id: str, body: AsyncIterable[bytes],
                    expected: int | None, inline: bool = False,
                    around_cache: bool = False) -> int:
        """Stage an archive: in memory when it will be kept inline, else as a file (with
        `around_cache`, its whole blocks written with O_DIRECT)."""
        if inline:
            size = await self.memory.receive(stage_id, body, expected)
            if self.layout.staged_path(stage_id).exists():  # replaced a staged file
                await asyncio.to_thread(staging.discard_stage, self.layout, stage_id)
            return size
        size = await staging.write_stage(self.layout, stage_id, body, expected,
                                         around_cache)
        self.memory.discard(stage_id)
        return size

    async def discard_stage(self, stage_id: str) -> None:
        """Drop a stage, in memory or on disk (a stage id is never in both)."""
        if not self.memory.discard(stage_id):
            await asyncio.to_thread(staging.discard_stage, self.layout, stage_id)

    async def _materialize(self, stage_id: str) -> None:
        """Write an in-memory stage out as a staged file, for a commit that wants a file."""
        data = self.memory.get(stage_id)
        if data is not None:
            await asyncio.to_thread(staging.write_staged_file, self.layout, stage_id, data)
            self.memory.discard(stage_id)

    async def commit_object(self, commit: ObjectCommit, stage_id: str | None,
                            archive_id: str | None, inline: bool,
                            data: bytes | None = None) -> None:
        """Make a staged archive (if any) and the object row visible, then clean up.
        `data`: an inline archive that came with the commit itself (no stage)."""
        row = commit.row
        held = data
        if stage_id is not None and inline and archive_id is not None:
            held = self.memory.get(stage_id)
        if held is not None and archive_id is not None:
            # One writer job: the already-committed check, the inline archive and the row
            # share the transaction, and the stage leaves memory only once it committed.
            commit = replace(commit, inline=(archive_id, held))
            kill_point("commit.before_txn")
            orphans = await self.index.write(catalog.commit_object, commit)
            kill_point("commit.after_txn")
            self._observe(row.version_id)
            if stage_id is not None:
                self.memory.discard(stage_id)
            await self._unlink(orphans)
            return
        if await self.index.read(catalog.is_committed, row.incarnation, row.key,
                                 row.version_id):
            self._observe(row.version_id)
            if stage_id is not None:
                await self.discard_stage(stage_id)
            return
        if stage_id is not None and archive_id is not None:
            commit = await self._take_stage(commit, stage_id, archive_id, inline)
        kill_point("commit.before_txn")
        try:
            orphans = await self.index.write(catalog.commit_object, commit)
        except claims.NewerVersion:
            if stage_id is not None and archive_id is not None and commit.inline is None:
                await self._unlink([archive_id])  # installed just now, for this commit only
            raise
        kill_point("commit.after_txn")
        self._observe(row.version_id)
        if inline and stage_id is not None:
            await self.discard_stage(stage_id)
        await self._unlink(orphans)

    async def repair_object(self, commit: ObjectCommit, stage_id: str | None,
                            archive_id: str | None, inline: bool) -> None:
        """The healer's commit: a rebuilt archive (if any) replaces the old file or
        inline copy, and the row is inserted or its manifest replaced, durable."""
        if stage_id is not None and archive_id is not None:
            commit = await self._take_stage(commit, stage_id, archive_id, inline)
        orphans = await self.index.write(catalog.repair_object, commit)
        self._observe(commit.row.version_id)
        if stage_id is not None and inline:
            await self.discard_stage(stage_id)
        await self._unlink(orphans)

    async def _take_stage(self, commit: ObjectCommit, stage_id: str, archive_id: str,
                          inline: bool) -> ObjectCommit:
        """Make a stage the archive `archive_id`: its bytes ride in the commit when kept
        inline (from memory or the staged file), else the file is installed now."""
        if inline:
            data = self.memory.get(stage_id)
            if data is None:
                data = await asyncio.to_thread(staging.read_stage, self.layout, stage_id,
                                               MAX_INLINE_BYTES)
            return replace(commit, inline=(archive_id, data))
        await self._materialize(stage_id)
        await asyncio.to_thread(staging.install_stage, self.layout, stage_id, archive_id)
        return commit

    async def roll_back(self, incarnation: str, key: str, version_id: str) -> None:
        await self._unlink(await self.index.write(catalog.roll_back, incarnation, key,
                                                  version_id))

    async def hand_off(self, incarnation: str, key: str, version_id: str,
                       grace: float) -> None:
        await self._unlink(await self.index.write(catalog.hand_off, incarnation, key,
                                                  version_id, time.time() + grace))

    async def commit_part(self, upload_id: str, part_number: int, stage_id: str,
                          archive_id: str, manifest: dict[str, Any]) -> None:
        """Install the staged part and upsert its row; UploadMissing once the upload ended."""
        try:
            await self._materialize(stage_id)
            await asyncio.to_thread(staging.install_stage, self.layout, stage_id, archive_id)
        except staging.StageMissing:
            stored = await self.index.read(uploads.part_archive, upload_id, part_number)
            if stored != archive_id:
                raise
        committed, orphans = await self.index.write(uploads.commit_part, upload_id,
                                                    part_number, archive_id, manifest)
        await self._unlink(orphans)
        if not committed:
            raise uploads.UploadMissing(f"no upload {upload_id}")

    async def claim_upload(self, upload_id: str, token: str, op: str) -> None:
        await self.index.write(uploads.claim_upload, upload_id, token, op, time.time())

    async def release_claim(self, upload_id: str, token: str) -> None:
        await self.index.write(uploads.release_claim, upload_id, token)

    async def complete_upload(self, upload_id: str, token: str,
                              commit: ObjectCommit) -> list[str]:
        """End the upload by Complete; returns listed archives this volume lacks."""
        orphans, missing = await self.index.write(uploads.complete_upload, upload_id, token,
                                                  commit)
        self._observe(commit.row.version_id)
        await self._unlink(orphans)
        return missing

    async def abort_upload(self, upload_id: str, token: str | None) -> None:
        orphans = await self.index.write(uploads.abort_upload, upload_id, token, time.time())
        await self._unlink(orphans)

    async def _unlink(self, archive_ids: list[str]) -> None:
        if archive_ids:
            await asyncio.to_thread(self._unlink_files, archive_ids)

    def _unlink_files(self, archive_ids: list[str]) -> None:
        for archive_id in archive_ids:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.layout.archive_path(archive_id))

    # archives

    async def open_archive(self, archive_id: str) -> LockedFd | bytes | None:
        """An open file, the inline bytes, or None when this volume lacks the archive.

        One reader-thread job tries the file, then the inline table, so a small object's
        GET costs a single thread hand-off.
        """
        return await owning_opened(self.index.read(self._open_archive, archive_id))

    def _open_archive(self, conn: sqlite3.Connection, archive_id: str
                      ) -> LockedFd | bytes | None:
        try:
            return LockedFd.open_for_reading(self.layout.archive_path(archive_id))
        except FileNotFoundError:
            return row_reads.inline_archive(conn, archive_id)

    async def delete_archive(self, archive_id: str) -> None:
        await self.index.write(catalog.drop_inline, archive_id)
        await self._unlink([archive_id])

    # object rows

    async def latest(self, incarnation: str, key: str, with_inline: bool = False
                     ) -> list[dict[str, Any]]:
        return await self.index.read(row_reads.latest, incarnation, key, with_inline)

    async def latest_many(self, keys: list[tuple[str, str, bool]]
                          ) -> list[list[dict[str, Any]]]:
        """`latest` of many keys in one reader-thread job (a gateway's batch)."""
        return await self.index.read(row_reads.latest_many, keys)

    async def latest_and_archive(self, incarnation: str, key: str, with_inline: bool,
                                 version_id: str, archive_id: str
                                 ) -> tuple[list[dict[str, Any]], LockedFd | bytes | None]:
        """`latest`, and the archive opened (as `open_archive`) when the newest row is
        `version_id`: a ranged GET's first fragment read rides on its `latest` request.
        One reader-thread job for both."""
        return await owning_opened(self.index.read(self._latest_and_archive, incarnation,
                                                   key, with_inline, version_id, archive_id))

    def _latest_and_archive(self, conn: sqlite3.Connection, incarnation: str, key: str,
                            with_inline: bool, version_id: str, archive_id: str
                            ) -> tuple[list[dict[str, Any]], LockedFd | bytes | None]:
        versions = row_reads.latest(conn, incarnation, key, with_inline)
        newest = next((v for v in versions if not v.get("forgotten")), None)
        if newest is None or newest["version_id"] != version_id:
            return versions, None
        return versions, self._open_archive(conn, archive_id)

    async def version(self, incarnation: str, key: str,
                      version_id: str) -> dict[str, Any] | None:
        return await self.index.read(row_reads.version, incarnation, key, version_id)

    async def mark_durable(self, incarnation: str, key: str, version_id: str,
                           heal: tuple[catalog.HealEntry, ...], grace: float) -> bool:
        kill_point("durable.before_txn")
        found, orphans = await self.index.write(catalog.mark_durable, incarnation, key,
                                                version_id, heal, time.time(), grace)
        kill_point("durable.after_txn")
        await self._unlink(orphans)
        return found

    async def mark_durable_many(
            self, notices: list[tuple[str, str, str, tuple[catalog.HealEntry, ...]]],
            grace: float) -> list[bool]:
        """Several durable notices at once: each its own write job, so the index writer
        puts them in one transaction (one fsync). Notices are idempotent: if one fails,
        the request fails and the sender's retry (or the janitor) redoes them all."""
        kill_point("durable.before_txn")
        now = time.time()
        answers = await asyncio.gather(*(
            self.index.write(catalog.mark_durable, incarnation, key, version_id, heal, now,
                             grace)
            for incarnation, key, version_id, heal in notices))
        kill_point("durable.after_txn")
        await self._unlink([orphan for _, orphans in answers for orphan in orphans])
        return [found for found, _ in answers]

    async def forget_version(self, incarnation: str, key: str, version_id: str,
                             durable: bool, heal: tuple[catalog.HealEntry, ...],
                             grace: float) -> bool:
        """Tombstone one version (volume_server/tombstones.py); True if it was here."""
        held, orphans = await self.index.write(catalog.forget_version, incarnation, key,
                                               version_id, durable, heal, time.time(), grace)
        kill_point("forget.after_txn")
        await self._unlink(orphans)
        return held

    async def list_objects(self, incarnation: str, prefix: str, start_after: str,
                           delimiter: str, limit: int) -> dict[str, Any]:
        return await self.index.read(listing.list_page, incarnation, prefix, start_after,
                                     delimiter, limit)

    # buckets, uploads, heal queue

    async def put_bucket(self, record: dict[str, Any]) -> bool:
        return await self.index.write(records.put_bucket, record)

    async def get_bucket(self, name: str) -> dict[str, Any] | None:
        return await self.index.read(records.get_bucket, name)

    async def list_buckets(self) -> list[dict[str, Any]]:
        return await self.index.read(records.list_buckets)

    async def put_upload(self, record: dict[str, Any]) -> None:
        await self.index.write(uploads.put_upload, record)

    async def get_upload(self, upload_id: str) -> dict[str, Any] | None:
        return await self.index.read(uploads.get_upload, upload_id)

    async def list_uploads(self, incarnation: str, prefix: str) -> list[dict[str, Any]]:
        return await self.index.read(uploads.list_uploads, incarnation, prefix)

    async def list_parts(self, upload_id: str) -> list[dict[str, Any]]:
        return await self.index.read(uploads.list_parts, upload_id)

    async def list_heal(self, limit: int = 1 << 31) -> list[dict[str, Any]]:
        return await self.index.read(records.list_heal, limit)

    async def queue_heal(self, incarnation: str, key: str, version_id: str,
                         archive_id: str | None, index: int | None, reason: str) -> None:
        await self.index.write(catalog.queue_heal, incarnation, key, version_id, reason,
                               time.time(), archive_id, index)

    async def retired(self) -> list[tuple[str, float]]:
        return await self.index.read(catalog.retired_archives)

    async def drop_heal(self, incarnation: str, key: str, version_id: str, up_to: int) -> int:
        return await self.index.write(records.drop_heal, incarnation, key, version_id, up_to)

    async def heal_depth(self) -> int:
        return await self.index.read(records.heal_depth)

    # the janitor's rounds (volume_server/janitor.py)

    async def sweep_retired(self) -> int:
        """Free retired archives whose grace has passed; how many files went."""
        orphans = await self.index.write(catalog.sweep_retired, time.time())
        await self._unlink(orphans)
        return len(orphans)

    async def queue_unmarked(self, older_than: float) -> int:
        """Queue for heal every pending row and tombstone that got no durable notice in
        time."""
        now = time.time()
        rows = await self.index.read(catalog.unmarked_rows, now - older_than)
        rows += await self.index.read(tombstones.pending_tombstones, now - older_than)
        for row in rows:
            await self.index.write(catalog.queue_heal, row["incarnation"], row["key"],
                                   row["version_id"], "no durable notice", now)
        return len(rows)

    async def claim_key(self, incarnation: str, key: str, token: str, ttl: float) -> bool:
        return await self.index.write(claims.claim, incarnation, key, token, time.time(),
                                      ttl)

    async def release_key(self, incarnation: str, key: str, token: str) -> None:
        await self.index.write(claims.release, incarnation, key, token)

    async def sweep_claims(self) -> int:
        return await self.index.write(claims.sweep_claims, time.time())

    async def remove_stale_stages(self, older_than: float) -> int:
        self.memory.expire()  # on the event loop, like every other use of it
        return await asyncio.to_thread(staging.remove_stale, self.layout,
                                       time.time() - older_than)

    # operator views: `GET /status`, `GET /heal/versions`, `/metrics`

    async def status_counts(self) -> dict[str, int]:
        return await self.index.read(records.status_counts)

    async def heal_of(self, incarnation: str, limit: int) -> tuple[list[dict[str, Any]], int]:
        return await self.index.read(records.heal_of, incarnation, limit)

    async def heal_versions(self, limit: int, incarnation: str | None = None
                            ) -> tuple[list[dict[str, Any]], bool]:
        return await self.index.read(records.heal_versions, limit, incarnation)

    async def disk_usage(self) -> dict[str, int]:
        """statvfs of the data directory: the file system's size, used and free bytes
        (free as an unprivileged writer sees it)."""
        st = await asyncio.to_thread(os.statvfs, self.layout.root)
        return {"total": st.f_blocks * st.f_frsize,
                "used": (st.f_blocks - st.f_bfree) * st.f_frsize,
                "free": st.f_bavail * st.f_frsize}
