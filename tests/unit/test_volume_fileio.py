"""volume_server.fileio: a request cancelled while its thread job opens a file does not
leak the descriptor (owning_opened); a read runs on the event loop only when the page
cache holds all of it and no thread holds the descriptor, and answers the same bytes
either way (pread_cached, aread)."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import threading
import time
from pathlib import Path

import pytest

from tests.nowait import nowait_reads_work
from volume_server import fileio
from volume_server.fileio import LockedFd, owning_opened


def test_a_file_opened_for_a_cancelled_request_is_closed(tmp_path: Path) -> None:
    path = tmp_path / "archive"
    path.write_bytes(b"x" * 100)
    opened: list[LockedFd] = []

    def slow_open() -> tuple[list, LockedFd]:
        time.sleep(0.2)  # the request goes away meanwhile
        fd = LockedFd.open(path, os.O_RDONLY)
        opened.append(fd)
        return [], fd

    async def main() -> None:
        loop = asyncio.get_running_loop()
        request = asyncio.ensure_future(owning_opened(loop.run_in_executor(None, slow_open)))
        await asyncio.sleep(0.05)
        request.cancel()
        await asyncio.sleep(0.4)
        assert request.cancelled()
        answered = await owning_opened(loop.run_in_executor(None, slow_open))
        assert answered[1].pread(3, 0) == b"xxx"  # handed over open
        answered[1].close()

    asyncio.run(main())
    assert len(opened) == 2
    with pytest.raises(ValueError, match="closed"):
        opened[0].pread(1, 0)  # the cancelled request's file was closed


def _reads(where: str) -> float:
    return fileio.READS.labels(where)._value.get()


def _file(tmp_path: Path, size: int = 3 << 20) -> tuple[bytes, LockedFd]:
    data = os.urandom(size)
    path = tmp_path / "archive"
    path.write_bytes(data)
    return data, LockedFd.open(path, os.O_RDONLY)


def _evict(fd: LockedFd) -> None:
    os.fsync(fd._fd)
    os.posix_fadvise(fd._fd, 0, 0, os.POSIX_FADV_DONTNEED)


def test_a_cached_read_runs_on_the_loop_and_an_uncached_one_in_a_thread(tmp_path):
    if not nowait_reads_work(tmp_path):
        pytest.skip("this filesystem refuses reads without waiting")
    data, fd = _file(tmp_path)
    assert fd.pread_cached(1 << 20, 5) == data[5:5 + (1 << 20)]  # just written: cached
    cached, thread = _reads("cached"), _reads("thread")
    assert asyncio.run(fd.aread(1000, 77)) == data[77:1077]
    assert (_reads("cached"), _reads("thread")) == (cached + 1, thread)

    _evict(fd)
    assert fd.pread_cached(1 << 20, 1 << 20) is None  # would wait for the disk
    assert asyncio.run(fd.aread(1 << 20, 1 << 20)) == data[1 << 20:2 << 20]
    assert _reads("thread") == thread + 1
    fd.close()


def test_a_long_partly_cached_or_short_read_is_left_to_the_thread(tmp_path):
    data, fd = _file(tmp_path, 100_000)
    assert fd.pread_cached(1000, 99_500) is None  # runs past the end
    (tmp_path / "big").mkdir()
    big, fd_big = _file(tmp_path / "big", fileio.CACHED_READ_MAX + 1)
    assert fd_big.pread_cached(fileio.CACHED_READ_MAX + 1, 0) is None  # would hold the loop
    thread = _reads("thread")
    assert asyncio.run(fd_big.aread(fileio.CACHED_READ_MAX + 1, 0)) == big
    assert _reads("thread") == thread + 1
    fd_big.close()
    assert asyncio.run(fd.aread(1000, 99_500)) == data[99_500:]  # the thread's short read
    assert asyncio.run(fd.aread(10, 200_000)) == b""
    fd.close()


def test_a_descriptor_a_thread_holds_is_not_waited_for_on_the_loop(tmp_path):
    data, fd = _file(tmp_path, 4096)
    fd._lock.acquire()
    released = threading.Timer(0.2, fd._lock.release)
    released.start()
    started = time.monotonic()
    assert fd.pread_cached(10, 0) is None
    assert time.monotonic() - started < 0.1
    assert asyncio.run(fd.aread(10, 0)) == data[:10]  # the thread waits instead
    released.join()
    fd.close()
    with pytest.raises(ValueError, match="closed"):
        fd.pread_cached(10, 0)


def test_another_error_leaves_the_read_to_the_thread_and_nowait_on(tmp_path, monkeypatch):
    data, fd = _file(tmp_path, 4096)

    def fail(*args):
        raise OSError(errno.EIO, "bad sector")

    monkeypatch.setattr(fileio, "_nowait", True)
    monkeypatch.setattr(os, "preadv", fail)
    assert fd.pread_cached(10, 0) is None
    assert fileio._nowait  # one failed read says nothing of the filesystem
    assert asyncio.run(fd.aread(10, 0)) == data[:10]  # the thread's read decides
    fd.close()


def test_archives_are_read_without_access_time_updates(tmp_path):
    path = tmp_path / "archive"
    path.write_bytes(b"x" * 10)
    fd = LockedFd.open_for_reading(path)
    try:
        flags = fcntl.fcntl(fd._fd, fcntl.F_GETFL)
        assert flags & os.O_NOATIME
        assert fd.pread(3, 0) == b"xxx"
    finally:
        fd.close()


def test_a_filesystem_without_nowait_reads_turns_them_off(tmp_path, monkeypatch):
    data, fd = _file(tmp_path, 4096)
    calls = []

    def refuse(*args):
        calls.append(args)
        raise OSError(errno.EOPNOTSUPP, "not here")

    monkeypatch.setattr(fileio, "_nowait", True)
    monkeypatch.setattr(os, "preadv", refuse)
    assert fd.pread_cached(10, 0) is None
    assert fd.pread_cached(10, 0) is None
    assert len(calls) == 1  # asked once, then never again
    assert asyncio.run(fd.aread(10, 0)) == data[:10]
    fd.close()
