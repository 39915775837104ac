"""Staging fragment archives: stream to `staging/<id>.part`, fsync, rename to `staging/<id>`.

A body that ends early, carries the wrong byte count or whose sender disconnects leaves
nothing behind: the partial file is removed before the error propagates. Committing
moves a staged file into `fragments/` (see Layout.install).

Archives the gateway will keep inline in SQLite are staged in memory instead
(`MemoryStages`): no file and no fsync, because the commit transaction that inserts them
is what makes the write durable; a crash before it only loses an unacknowledged stage.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterable, Callable

from shardgate.faults import kill_point
from volume_server.direct_writes import StageWriter, open_stage_file
from volume_server.fileio import LockedFd
from volume_server.layout import Layout

MAX_MEMORY_STAGE = 1 << 20
MAX_MEMORY_TOTAL = 64 << 20
MEMORY_STAGE_SECONDS = 300.0


class StageError(Exception):
    """The staged body is unusable (wrong size, sender gone); nothing was kept."""


class StageBusy(Exception):
    """Another request is still writing the same stage id."""


class StageMissing(Exception):
    """No staged file under that id (never staged, aborted, or already committed)."""


class StageFull(Exception):
    """In-memory staging is at its byte cap; the sender may retry later."""


class MemoryStages:
    """Small staged archives held in RAM until their commit, bounded in size and age.

    Only the event loop touches it, so no lock is needed. Bytes of bodies still arriving
    count against the total cap, so concurrent stages cannot overshoot it. Stages never
    claimed by a commit or a DELETE expire after `ttl` seconds (checked on every stage).
    """

    def __init__(self, max_stage: int = MAX_MEMORY_STAGE, max_total: int = MAX_MEMORY_TOTAL,
                 ttl: float = MEMORY_STAGE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_stage = max_stage
        self.max_total = max_total
        self.ttl = ttl
        self._clock = clock
        self._held: dict[str, tuple[bytes, float]] = {}  # insertion order is expiry order
        self._busy: set[str] = set()
        self.used = 0

    def __contains__(self, stage_id: str) -> bool:
        return stage_id in self._held

    def __len__(self) -> int:
        return len(self._held)

    def _reserve(self, extra: int) -> None:
        if self.used + extra > self.max_total:
            raise StageFull(f"in-memory staging is full ({self.max_total} bytes)")
        self.used += extra

    async def receive(self, stage_id: str, body: AsyncIterable[bytes],
                      expected: int | None = None) -> int:
        """Buffer `body` under `stage_id` (replacing an earlier stage); return its size."""
        self.expire()
        if stage_id in self._busy:
            raise StageBusy(f"stage {stage_id!r} is being written")
        if expected is not None and expected > self.max_stage:
            raise StageError(f"size={expected} is over the inline stage limit {self.max_stage}")
        self._busy.add(stage_id)
        reserved = 0
        try:
            if expected is not None:
                self._reserve(expected)
                reserved = expected
            buf = bytearray()
            async for chunk in body:
                size = len(buf) + len(chunk)
                if expected is not None and size > expected:
                    raise StageError(f"body longer than size={expected}")
                if size > self.max_stage:
                    raise StageError(f"body over the inline stage limit {self.max_stage}")
                if size > reserved:
                    self._reserve(size - reserved)
                    reserved = size
                buf += chunk
            if expected is not None and len(buf) != expected:
                raise StageError(f"body has {len(buf)} bytes, size={expected}")
            self.discard(stage_id)
            self._held[stage_id] = (bytes(buf), self._clock() + self.ttl)
            self.used -= reserved - len(buf)
            reserved = 0
            return len(buf)
        finally:
            self.used -= reserved
            self._busy.discard(stage_id)

    def get(self, stage_id: str) -> bytes | None:
        """The staged bytes, left in place until the commit that uses them succeeds."""
        held = self._held.get(stage_id)
        return None if held is None else held[0]

    def discard(self, stage_id: str) -> bool:
        """Drop a stage; True if there was one."""
        held = self._held.pop(stage_id, None)
        if held is None:
            return False
        self.used -= len(held[0])
        return True

    def expire(self) -> None:
        """Drop stages nobody committed or deleted in time (a gateway that went away)."""
        now = self._clock()
        stale = []
        for stage_id, (_, expires) in self._held.items():
            if expires > now:
                break
            stale.append(stage_id)
        for stage_id in stale:
            self.discard(stage_id)


async def write_stage(layout: Layout, stage_id: str, body: AsyncIterable[bytes],
                      expected: int | None = None, direct: bool = True) -> int:
    """Stream `body` into the staging area; return the byte count once it is durable.
    With `direct`, whole blocks bypass the page cache (volume_server/direct_writes.py)."""
    part = layout.partial_path(stage_id)
    final = layout.staged_path(stage_id)
    try:
        fd, direct = open_stage_file(part, direct)
    except FileExistsError as exc:
        raise StageBusy(f"stage {stage_id!r} is being written") from exc
    writer = StageWriter(fd, direct)
    done = False
    try:
        async for chunk in body:
            if expected is not None and writer.size + len(chunk) > expected:
                raise StageError(f"body longer than size={expected}")
            await writer.feed(chunk)
        if expected is not None and writer.size != expected:
            raise StageError(f"body has {writer.size} bytes, size={expected}")
        kill_point("stage.after_blocks")
        await writer.finish()
        await asyncio.to_thread(fd.fsync)
        kill_point("stage.after_fsync")
        await asyncio.to_thread(os.replace, part, final)
        done = True
        return writer.size
    finally:
        await asyncio.to_thread(_close_and_clean, fd, part, done)
        writer.release()  # after the close, which waited for any write in flight


def _close_and_clean(fd: LockedFd, part: os.PathLike[str], keep: bool) -> None:
    fd.close()
    if not keep:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(part)


def write_staged_file(layout: Layout, stage_id: str, data: bytes) -> None:
    """Turn an in-memory stage into a durable staged file, for a commit that wants a file
    archive after all (blocking)."""
    part = layout.partial_path(stage_id)
    try:
        fd = LockedFd.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except FileExistsError as exc:
        raise StageBusy(f"stage {stage_id!r} is being written") from exc
    done = False
    try:
        fd.write_all(data)
        fd.fsync()
        os.replace(part, layout.staged_path(stage_id))
        done = True
    finally:
        _close_and_clean(fd, part, done)


def discard_stage(layout: Layout, stage_id: str) -> None:
    """Remove a staged file if it exists (blocking; idempotent)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(layout.staged_path(stage_id))


def install_stage(layout: Layout, stage_id: str, archive_id: str) -> None:
    """Move a staged file to its archive path, directories fsynced (blocking)."""
    try:
        layout.install(layout.staged_path(stage_id), archive_id)
    except FileNotFoundError as exc:
        raise StageMissing(f"no staged file {stage_id!r}") from exc


def read_stage(layout: Layout, stage_id: str, max_bytes: int) -> bytes:
    """The bytes of a small staged file, for archives kept inline in SQLite (blocking)."""
    path = layout.staged_path(stage_id)
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except FileNotFoundError as exc:
        raise StageMissing(f"no staged file {stage_id!r}") from exc
    if len(data) > max_bytes:
        raise StageError(f"staged file {stage_id!r} is too large to keep inline")
    return data


def remove_stale(layout: Layout, cutoff: float) -> int:
    """Remove staged files (and partial ones) untouched since `cutoff`: their gateway
    died between stage and commit, or gave up. Returns how many went (blocking)."""
    removed = 0
    with os.scandir(layout.staging) as entries:
        for entry in entries:
            try:
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                continue
    return removed
