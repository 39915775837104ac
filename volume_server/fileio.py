"""A file descriptor used from worker threads that can be closed safely at any moment.

A request can be cancelled while a thread is still inside `os.pread`/`os.write`; closing
the descriptor then could hit a number the kernel has already reused. Every operation
and `close` take the same lock, so close waits for the call in flight.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class LockedFd:
    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def open(cls, path: os.PathLike[str] | str, flags: int, mode: int = 0o644) -> LockedFd:
        return cls(os.open(path, flags | os.O_CLOEXEC, mode))

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

    def fsync(self) -> None:
        with self._lock:
            self._check()
            os.fsync(self._fd)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self._fd)

    async def aread(self, length: int, offset: int) -> bytes:
        return await asyncio.to_thread(self.pread, length, offset)

    async def awrite(self, data: bytes | bytearray) -> None:
        await asyncio.to_thread(self.write_all, data)


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
