"""Staging fragment archives: stream to `staging/<id>.part`, fsync, rename to `staging/<id>`.

A body that ends early, carries the wrong byte count or whose sender disconnects leaves
nothing behind: the partial file is removed before the error propagates. Committing
moves a staged file into `fragments/` (see Layout.install).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterable

from volume_server.fileio import LockedFd
from volume_server.layout import Layout

FLUSH_BYTES = 1 << 20


class StageError(Exception):
    """The staged body is unusable (wrong size, sender gone); nothing was kept."""


class StageBusy(Exception):
    """Another request is still writing the same stage id."""


class StageMissing(Exception):
    """No staged file under that id (never staged, aborted, or already committed)."""


async def write_stage(layout: Layout, stage_id: str, body: AsyncIterable[bytes],
                      expected: int | None = None) -> int:
    """Stream `body` into the staging area; return the byte count once it is durable."""
    part = layout.partial_path(stage_id)
    final = layout.staged_path(stage_id)
    try:
        fd = LockedFd.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except FileExistsError as exc:
        raise StageBusy(f"stage {stage_id!r} is being written") from exc
    size = 0
    done = False
    try:
        buf = bytearray()
        async for chunk in body:
            if expected is not None and size + len(buf) + len(chunk) > expected:
                raise StageError(f"body longer than size={expected}")
            buf += chunk
            if len(buf) >= FLUSH_BYTES:
                data, buf = buf, bytearray()
                await fd.awrite(data)
                size += len(data)
        if buf:
            await fd.awrite(buf)
            size += len(buf)
        if expected is not None and size != expected:
            raise StageError(f"body has {size} bytes, size={expected}")
        await asyncio.to_thread(fd.fsync)
        await asyncio.to_thread(os.replace, part, final)
        done = True
        return size
    finally:
        await asyncio.to_thread(_close_and_clean, fd, part, done)


def _close_and_clean(fd: LockedFd, part: os.PathLike[str], keep: bool) -> None:
    fd.close()
    if not keep:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(part)


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
