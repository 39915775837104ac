"""A file descriptor used from worker threads that can be closed safely at any moment.

A request can be cancelled while a thread is still inside `os.pread`/`os.write`; closing
the descriptor then could hit a number the kernel has already reused. Every operation
and `close` take the same lock, so close waits for the call in flight. A read the page
cache can answer whole runs on the event loop instead (`pread_cached`, `read_off_loop`):
it cannot block, and it skips two thread hand-offs.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from prometheus_client import Counter

T = TypeVar("T")

log = logging.getLogger(__name__)

READS = Counter("shardgate_archive_reads_total",
                "Archive reads, by where they ran: on the event loop from the page cache "
                "(cached), or in a worker thread (thread: not all cached, or the "
                "descriptor busy).", ["where"])

CACHED_READ_MAX = 1 << 20  # longer reads always go to a thread

_nowait = hasattr(os, "RWF_NOWAIT")  # Linux 4.14+; off for good once a filesystem refuses it
# tmpfs, for one, answers EOPNOTSUPP; a seccomp filter may answer EPERM or ENOSYS.
_NOWAIT_REFUSED = (errno.EOPNOTSUPP, errno.EINVAL, errno.EPERM, errno.ENOSYS)


def _turn_off_nowait(exc: OSError) -> None:
    global _nowait
    if _nowait:
        _nowait = False
        log.warning("reads without waiting refused here (%s): every archive read now runs "
                    "in a thread", exc)


class LockedFd:
    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def open(cls, path: os.PathLike[str] | str, flags: int, mode: int = 0o644) -> LockedFd:
        return cls(os.open(path, flags | os.O_CLOEXEC, mode))

    @classmethod
    def open_for_reading(cls, path: os.PathLike[str] | str) -> LockedFd:
        """Read-only, without access-time updates where allowed (an update goes through
        the filesystem's journal, which a read from the page cache must not wait for)."""
        try:
            return cls.open(path, os.O_RDONLY | os.O_NOATIME)
        except PermissionError:  # O_NOATIME needs the file's owner
            return cls.open(path, os.O_RDONLY)

    def _check(self) -> None:
        if self._closed:
            raise ValueError("file is closed")

    def size(self) -> int:
        with self._lock:
            self._check()
            return os.fstat(self._fd).st_size

    def pread(self, length: int, offset: int) -> bytes:
        with self._lock:
            self._check()
            return os.pread(self._fd, length, offset)

    def write_all(self, data: bytes | bytearray) -> None:
        with self._lock:
            self._check()
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]

    def set_direct(self) -> None:
        """Write around the page cache from here on (O_DIRECT on); OSError (EINVAL) if
        the filesystem refuses it. It cannot block."""
        self._set_flags(os.O_DIRECT, 0)

    def drop_direct(self) -> None:
        """Write through the page cache from here on (O_DIRECT off): for a tail shorter
        than a block, or a filesystem that refused a direct write. It cannot block."""
        self._set_flags(0, os.O_DIRECT)

    def _set_flags(self, on: int, off: int) -> None:
        with self._lock:
            self._check()
            flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
            fcntl.fcntl(self._fd, fcntl.F_SETFL, (flags | on) & ~off)

    def seek(self, offset: int) -> None:
        """Where the next write goes (a write retried from its start)."""
        with self._lock:
            self._check()
            os.lseek(self._fd, offset, os.SEEK_SET)

    def fsync(self) -> None:
        with self._lock:
            self._check()
            os.fsync(self._fd)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self._fd)

    def pread_cached(self, length: int, offset: int) -> bytes | None:
        """The bytes if the page cache holds all of them and no thread is using the
        descriptor, else None: a read that cannot block, for the event loop's own thread.
        A thread hop costs more than copying a cached MiB, so this is tried first; longer
        reads go to the thread, so the loop is never held for long."""
        if not _nowait or length > CACHED_READ_MAX or not self._lock.acquire(blocking=False):
            return None
        try:
            self._check()
            buffer = bytearray(length)
            try:
                got = os.preadv(self._fd, [buffer], offset, os.RWF_NOWAIT)
            except BlockingIOError:
                return None
            except OSError as exc:  # the thread's plain read reports real errors
                if exc.errno in _NOWAIT_REFUSED:
                    _turn_off_nowait(exc)
                return None
        finally:
            self._lock.release()
        if got < length:
            return None  # partly cached, or short: the thread's read decides
        return bytes(buffer)

    async def aread(self, length: int, offset: int) -> bytes:
        """`pread` without blocking the event loop: from the cache on it, else in a thread."""
        return await read_off_loop(self.pread_cached, self.pread, length, offset)

    async def awrite(self, data: bytes | bytearray) -> None:
        await asyncio.to_thread(self.write_all, data)


async def read_off_loop(cached: Callable[..., T | None], blocking: Callable[..., T],
                        *args: Any) -> T:
    """`cached(*args)` on the event loop if it can answer, else `blocking(*args)` in a
    worker thread; counted by where it ran."""
    done = cached(*args)
    if done is not None:
        READS.labels("cached").inc()
        await asyncio.sleep(0)  # other requests get their turn between reads
        return done
    READS.labels("thread").inc()
    return await asyncio.to_thread(blocking, *args)


async def owning_opened(job: Awaitable[T]) -> T:
    """Await a thread job that may open files (a LockedFd, alone or in a tuple). If the
    awaiting request is cancelled first, the job still runs to its end in its thread, and
    whatever it opened is closed then instead of leaking."""
    task = asyncio.ensure_future(job)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(_close_opened)
        raise


def _close_opened(task: asyncio.Future) -> None:
    if task.cancelled() or task.exception() is not None:
        return
    result = task.result()
    for item in result if isinstance(result, tuple) else (result,):
        if isinstance(item, LockedFd):
            item.close()
