"""Staged fragment bytes written around the page cache (O_DIRECT), in aligned blocks.

Why: filling page-cache pages can be most of what a volume spends on a PUT. On the VMs
measured (docs/performance.md) storing a GB of an object's fragments cost 3.7 core-s
through the cache and 0.11 with O_DIRECT, and it was four fifths of the volumes' CPU on
a PUT. A volume seldom reads back soon what it has just written: parity is read only to
rebuild, and a GET fills the cache then, once, with the bytes it reads.

O_DIRECT wants the buffer, the file offset and the length in whole blocks. The bytes are
gathered into page-aligned 1 MiB blocks, each written whole in a worker thread; the
blocks come from a small pool, so their pages stay mapped from one stage to the next.
The tail, shorter than a block, goes through the cache. A filesystem that refuses
O_DIRECT (EINVAL or EOPNOTSUPP when it is asked for, or at a write; tmpfs on older
kernels) turns it off for the process, logged once: every write then goes through the
cache, as with `volume_direct_writes = "none"`.

Durability does not change: a stage is fsynced before its rename either way, and
O_DIRECT alone would not flush the device's own write cache.
"""

from __future__ import annotations

import errno
import logging
import mmap
import os

from volume_server.fileio import LockedFd

log = logging.getLogger(__name__)

BLOCK = 1 << 20  # also how much a stage written through the cache gathers per write
POOL_KEEP = 16  # blocks kept mapped between stages (16 MiB)

_direct = hasattr(os, "O_DIRECT")  # off for good once a filesystem refuses it
_REFUSED = (errno.EINVAL, errno.EOPNOTSUPP)


def _turn_off(exc: OSError) -> None:
    global _direct
    if _direct:
        _direct = False
        log.warning("O_DIRECT refused here (%s): staged archives are now written through "
                    "the page cache", exc)


def direct_available() -> bool:
    """True until a filesystem has refused O_DIRECT in this process."""
    return _direct


class BlockPool:
    """Page-aligned blocks for O_DIRECT writes; only the event loop takes and gives."""

    def __init__(self, keep: int = POOL_KEEP) -> None:
        self._free: list[mmap.mmap] = []
        self._keep = keep

    def take(self) -> mmap.mmap:
        return self._free.pop() if self._free else mmap.mmap(-1, BLOCK)

    def give(self, block: mmap.mmap) -> None:
        if len(self._free) < self._keep:
            self._free.append(block)
        else:
            block.close()

    def __len__(self) -> int:
        return len(self._free)


POOL = BlockPool()


def open_stage_file(path: os.PathLike[str] | str, direct: bool) -> tuple[LockedFd, bool]:
    """A new file to stage into (O_EXCL), with O_DIRECT when asked for and allowed;
    whether it has it. O_DIRECT is set after the open: asked for at the open, a refusing
    filesystem may create the file and then fail, and O_EXCL would refuse the retry."""
    fd = LockedFd.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    if not (direct and _direct):
        return fd, False
    try:
        fd.set_direct()
    except OSError as exc:
        if exc.errno not in _REFUSED:
            fd.close()
            raise
        _turn_off(exc)
        return fd, False
    return fd, True


class StageWriter:
    """Writes a stage's bytes as they arrive: whole aligned blocks with O_DIRECT, the rest
    (or everything, without it) through the cache, `BLOCK` bytes at a time."""

    def __init__(self, fd: LockedFd, direct: bool, pool: BlockPool = POOL) -> None:
        self.fd = fd
        self.pool = pool
        self.block: mmap.mmap | None = pool.take() if direct else None
        self.filled = 0  # bytes waiting in the block
        self.pending = bytearray()  # bytes waiting, without O_DIRECT
        self.written = 0

    async def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        """Take `chunk`; every block it fills is written before this returns."""
        if self.block is None:
            self.pending += chunk
            if len(self.pending) >= BLOCK:
                data, self.pending = self.pending, bytearray()
                await self.fd.awrite(data)
                self.written += len(data)
            return
        view = memoryview(chunk)
        while view:
            room = min(BLOCK - self.filled, len(view))
            self.block[self.filled:self.filled + room] = view[:room]
            self.filled += room
            view = view[room:]
            if self.filled == BLOCK:
                await self._write_block()

    async def _write_block(self) -> None:
        assert self.block is not None
        try:
            await self.fd.awrite(self.block)
        except OSError as exc:
            if exc.errno not in _REFUSED:
                raise
            _turn_off(exc)  # refused at a write: this file goes through the cache
            self.fd.drop_direct()
            self.fd.seek(self.written)  # where this block starts, whatever got written
            await self.fd.awrite(self.block)
        self.written += BLOCK
        self.filled = 0

    async def finish(self) -> None:
        """Write what is left (less than a block) through the cache."""
        if self.block is None:
            tail = self.pending
            self.pending = bytearray()
        else:
            tail = bytes(self.block[:self.filled])
            self.filled = 0
            if tail:
                self.fd.drop_direct()
        if tail:
            await self.fd.awrite(tail)
            self.written += len(tail)

    @property
    def size(self) -> int:
        """Bytes taken so far, written or not."""
        return self.written + self.filled + len(self.pending)

    def release(self) -> None:
        """Give the block back to the pool. Only once no write of it is in flight: after
        the descriptor is closed (closing waits for a write a thread is in)."""
        if self.block is not None:
            self.pool.give(self.block)
            self.block = None
